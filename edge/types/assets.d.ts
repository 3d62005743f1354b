// Wrangler's default module rules: `.txt` and `.html` import as text, `.bin` as bytes (the browser
// assets built by browser/build.ts into edge/build/browser/); wrangler.toml's: `.sql` as text (D1's
// migrations, edge/migrations/).
declare module "*.txt" {
  const text: string;
  export default text;
}
declare module "*.html" {
  const text: string;
  export default text;
}
declare module "*.bin" {
  const bytes: ArrayBuffer;
  export default bytes;
}
declare module "*.sql" {
  const text: string;
  export default text;
}
