/* sqlite-driver: SQLite 3 (the amalgamation) as a test program for OANIX mounts.
 *
 * usage: sqlite-driver DIR ROWS [MODE...]
 *   For each journal MODE (default: delete truncate persist wal memory off) it creates
 *   DIR/t-MODE.db, inserts ROWS rows in transactions of 1,000 (plus one transaction it rolls
 *   back), sorts them through a temporary file (PRAGMA temp_store=FILE: SQLite unlinks its temp
 *   files while they are open), checks `PRAGMA integrity_check`, the row count and a checksum,
 *   closes the database, reopens it and checks again.
 * stdout: one line per mode, "MODE rows=N ok ms=T", then "all ok".
 * Errors: "sqlite-driver: MODE: what: message" on stderr, exit 1; bad usage: exit 2.
 *
 * The VFS is "unix-none" (no file locks: wasi-libc's fcntl(F_SETLK) fails, so the default
 * "unix" VFS answers SQLITE_IOERR_LOCK), and fchmod, which is NULL in a WASI build and called
 * when SQLite makes a temp file, is replaced by a no-op through xSetSystemCall. WAL needs shared
 * memory, which WASI does not have, so it runs with locking_mode=EXCLUSIVE (the WAL index then
 * lives on the heap). Temp files go to $TMPDIR (the host sets it to a directory on the mount).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/types.h>
#include "sqlite3.h"

static const char *mode_now = "setup";

static void die(const char *what, sqlite3 *db) {
  fprintf(stderr, "sqlite-driver: %s: %s: %s\n", mode_now, what, db ? sqlite3_errmsg(db) : "failed");
  exit(1);
}

static void exec(sqlite3 *db, const char *sql) {
  char *err = 0;
  if (sqlite3_exec(db, sql, 0, 0, &err) != SQLITE_OK) {
    fprintf(stderr, "sqlite-driver: %s: %s: %s\n", mode_now, sql, err ? err : "?");
    exit(1);
  }
}

/* The first column of the first row of `sql`, as text (static buffer). */
static const char *one(sqlite3 *db, const char *sql) {
  static char out[256];
  sqlite3_stmt *st;
  if (sqlite3_prepare_v2(db, sql, -1, &st, 0) != SQLITE_OK) die(sql, db);
  int rc = sqlite3_step(st);
  if (rc != SQLITE_ROW) die(sql, db);
  const unsigned char *t = sqlite3_column_text(st, 0);
  snprintf(out, sizeof out, "%s", t ? (const char *)t : "");
  sqlite3_finalize(st);
  return out;
}

static int noop_fchmod(int fd, mode_t mode) {
  (void)fd; (void)mode;
  return 0;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* A key that scatters index writes over the whole b-tree. */
static long long key_of(long long i) { return (i * 2654435761LL) % 1000003LL; }

static sqlite3 *open_db(const char *path, const char *mode) {
  sqlite3 *db;
  if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, "unix-none") != SQLITE_OK) die("open", db);
  if (strcmp(mode, "wal") == 0) exec(db, "PRAGMA locking_mode=EXCLUSIVE");
  char sql[64];
  snprintf(sql, sizeof sql, "PRAGMA journal_mode=%s", mode);
  const char *got = one(db, sql);
  if (strcmp(got, mode) != 0) {
    fprintf(stderr, "sqlite-driver: %s: journal_mode is %s\n", mode, got);
    exit(1);
  }
  exec(db, "PRAGMA temp_store=FILE");
  exec(db, "PRAGMA cache_size=-512"); /* 512 KiB: big tables spill, sorts go to temp files */
  return db;
}

static void check(sqlite3 *db, long long rows, long long want_sum) {
  const char *ic = one(db, "PRAGMA integrity_check");
  if (strcmp(ic, "ok") != 0) {
    fprintf(stderr, "sqlite-driver: %s: integrity_check: %s\n", mode_now, ic);
    exit(1);
  }
  long long n = atoll(one(db, "SELECT count(*) FROM t"));
  long long sum = atoll(one(db, "SELECT total(k) FROM t"));
  if (n != rows || sum != want_sum) {
    fprintf(stderr, "sqlite-driver: %s: count %lld (want %lld), sum %lld (want %lld)\n", mode_now, n, rows, sum, want_sum);
    exit(1);
  }
}

static void run(const char *dir, long long rows, const char *mode) {
  mode_now = mode;
  char path[1024];
  snprintf(path, sizeof path, "%s/t-%s.db", dir, mode);
  const char *suffixes[] = {"", "-journal", "-wal", "-shm"};
  for (int i = 0; i < 4; i++) {
    char p[1100];
    snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
    unlink(p);
  }
  double t0 = now_ms();
  sqlite3 *db = open_db(path, mode);
  exec(db, "CREATE TABLE t(id INTEGER PRIMARY KEY, k INTEGER NOT NULL, v TEXT NOT NULL)");
  exec(db, "CREATE INDEX t_k ON t(k)");
  sqlite3_stmt *ins;
  if (sqlite3_prepare_v2(db, "INSERT INTO t(id, k, v) VALUES (?, ?, ?)", -1, &ins, 0) != SQLITE_OK) die("prepare", db);
  long long sum = 0;
  char text[80];
  for (long long i = 0; i < rows; i++) {
    if (i % 1000 == 0) exec(db, "BEGIN");
    long long k = key_of(i);
    snprintf(text, sizeof text, "row %lld of the table, key %lld, padded to a realistic size", i, k);
    sqlite3_bind_int64(ins, 1, i);
    sqlite3_bind_int64(ins, 2, k);
    sqlite3_bind_text(ins, 3, text, -1, SQLITE_STATIC);
    if (sqlite3_step(ins) != SQLITE_DONE) die("insert", db);
    sqlite3_reset(ins);
    sum += k;
    if (i % 1000 == 999 || i == rows - 1) exec(db, "COMMIT");
  }
  sqlite3_finalize(ins);
  /* A transaction that is rolled back changes nothing (with journal_mode=off, ROLLBACK is
   * undefined once the cache spills: SQLite's documentation says so). */
  if (strcmp(mode, "off") != 0) {
    exec(db, "BEGIN");
    exec(db, "DELETE FROM t WHERE id % 3 = 0");
    exec(db, "UPDATE t SET k = k + 1");
    exec(db, "ROLLBACK");
  }
  /* A sort bigger than the cache goes through a temp file that SQLite unlinked at open. */
  char sorted[64];
  snprintf(sorted, sizeof sorted, "%s", one(db, "SELECT count(*) FROM (SELECT v FROM t ORDER BY v DESC)"));
  if (atoll(sorted) != rows) die("sort: wrong row count", db);
  check(db, rows, sum);
  if (sqlite3_close(db) != SQLITE_OK) die("close", db);
  db = open_db(path, mode);
  check(db, rows, sum);
  if (sqlite3_close(db) != SQLITE_OK) die("close", db);
  printf("%s rows=%lld ok ms=%.0f\n", mode, rows, now_ms() - t0);
  fflush(stdout);
}

int main(int argc, char **argv) {
  if (argc < 3 || atoll(argv[2]) <= 0) {
    fprintf(stderr, "usage: sqlite-driver DIR ROWS [MODE...]\n");
    return 2;
  }
  sqlite3_vfs *vfs = sqlite3_vfs_find("unix-none");
  if (!vfs || vfs->xSetSystemCall(vfs, "fchmod", (sqlite3_syscall_ptr)noop_fchmod) != SQLITE_OK) {
    fprintf(stderr, "sqlite-driver: cannot install fchmod\n");
    return 1;
  }
  sqlite3_vfs_register(vfs, 1);
  const char *all[] = {"delete", "truncate", "persist", "wal", "memory", "off"};
  long long rows = atoll(argv[2]);
  if (argc > 3) for (int i = 3; i < argc; i++) run(argv[1], rows, argv[i]);
  else for (int i = 0; i < 6; i++) run(argv[1], rows, all[i]);
  printf("all ok\n");
  return 0;
}
