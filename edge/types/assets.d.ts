// Wrangler's default module rules: `.txt` and `.html` import as text, `.bin` as bytes (the browser
// assets built by browser/build.ts into edge/build/browser/).
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
