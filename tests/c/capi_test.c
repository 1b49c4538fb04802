/*
 * Drives every function of the cloudsync C API, including misuse: NULL arguments,
 * invalid JSON, invalid UTF-8, validation errors, cancelling from inside the progress
 * callback and aborting from a second thread. Built by tests/capi.rs with
 * -Wall -Wextra -Werror and AddressSanitizer/UBSan, and run again under valgrind.
 *
 * Environment (set by tests/capi.rs):
 *   CS_ENDPOINT   the S3 test server, e.g. http://127.0.0.1:9000
 *   CS_KEY, CS_SECRET  its credentials; CS_BUCKET an existing bucket
 *   CS_TMP        an empty scratch directory
 *   CS_SLOW=0     skip the slow (bandwidth-limited) abort cases (valgrind run)
 */
#include "cloudsync.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int failures = 0;
static int checks = 0;

#define CHECK(cond, ...)                                                                 \
    do {                                                                                 \
        checks++;                                                                        \
        if (!(cond)) {                                                                   \
            failures++;                                                                  \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);              \
            fprintf(stderr, __VA_ARGS__);                                                \
            fprintf(stderr, "\n");                                                       \
        }                                                                                \
    } while (0)

/* Expect `code`; print the error on a mismatch; always free the error. */
static void expect(uint32_t got, uint32_t want, cloudsync_error *err, const char *what) {
    checks++;
    if (got != want) {
        failures++;
        fprintf(stderr, "FAIL %s: got %u (%s), want %u (%s): %s\n", what, got, cloudsync_result_text(got), want,
                cloudsync_result_text(want), err ? cloudsync_error_message(err) : "(no error object)");
    } else if (want != CLOUDSYNC_OK && err == NULL) {
        failures++;
        fprintf(stderr, "FAIL %s: no error object for code %u\n", what, got);
    } else if (want != CLOUDSYNC_OK && cloudsync_error_code(err) != want) {
        failures++;
        fprintf(stderr, "FAIL %s: error object code %u != %u\n", what, cloudsync_error_code(err), want);
    }
    cloudsync_error_free(err);
}

/* Evaluate `expr` (which passes &err) first, then check it: C leaves the order in which
 * function arguments are evaluated unspecified, so `err` must not be read in the same call. */
#define EXPECT(expr, want, what)              \
    do {                                      \
        err = NULL;                           \
        uint32_t rc_ = (expr);                \
        expect(rc_, (want), err, (what));     \
        err = NULL;                           \
    } while (0)

static const char *env(const char *name) {
    const char *v = getenv(name);
    if (!v) {
        fprintf(stderr, "missing environment variable %s\n", name);
        exit(2);
    }
    return v;
}

/* The integer value of top-level member `key` of a JSON object text, or -1. Tracks
 * nesting and strings, so that `"credentials": {"id": 1}` does not answer for "id". */
static long long json_int(const char *json, const char *key) {
    if (!json) return -1;
    size_t klen = strlen(key);
    int depth = 0, in_string = 0;
    for (const char *p = json; *p; p++) {
        if (in_string) {
            if (*p == '\\' && p[1]) p++;
            else if (*p == '"') in_string = 0;
            continue;
        }
        if (*p == '{' || *p == '[') depth++;
        else if (*p == '}' || *p == ']') depth--;
        else if (*p == '"') {
            if (depth == 1 && strncmp(p + 1, key, klen) == 0 && p[1 + klen] == '"' && p[2 + klen] == ':')
                return atoll(p + 3 + klen);
            in_string = 1;
        }
    }
    return -1;
}

static void write_file(const char *path, size_t size, unsigned seed) {
    FILE *f = fopen(path, "wb");
    if (!f) {
        perror(path);
        exit(2);
    }
    unsigned x = seed;
    for (size_t i = 0; i < size; i++) {
        x = x * 1103515245u + 12345u;
        fputc((int)(x >> 16) & 0xff, f);
    }
    fclose(f);
}

static int same_file(const char *a, const char *b) {
    FILE *fa = fopen(a, "rb"), *fb = fopen(b, "rb");
    int same = fa && fb;
    while (same) {
        int ca = fgetc(fa), cb = fgetc(fb);
        if (ca != cb) same = 0;
        if (ca == EOF || cb == EOF) break;
    }
    if (fa) fclose(fa);
    if (fb) fclose(fb);
    return same;
}

static void mkdirs(const char *path) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = 0;
            mkdir(buf, 0755);
            *p = '/';
        }
    }
    mkdir(buf, 0755);
}

/* ---- callbacks */

struct counters {
    int progress_calls;
    int log_lines;
    int abort_at; /* return CLOUDSYNC_ABORT on this progress call (0: never) */
    uint32_t last_percent;
    int percent_went_down;
    int abort_returned;      /* a callback returned CLOUDSYNC_ABORT */
    int calls_after_abort;   /* callbacks that came after it (the header says none) */
    cloudsync_store *store;  /* when set, each progress call reads its job back */
    int reads_ok;            /* ... and how many of those reads succeeded */
};

static uint32_t on_progress(void *userdata, const cloudsync_progress *p) {
    struct counters *c = userdata;
    if (c->abort_returned) c->calls_after_abort++;
    c->progress_calls++;
    if (c->store) {
        /* Calling back into the library from a callback, as the header allows. */
        char *job = NULL;
        if (cloudsync_job_get(c->store, p->job_id, &job, NULL) == CLOUDSYNC_OK && job && strstr(job, "RUNNING"))
            c->reads_ok++;
        cloudsync_string_free(job);
    }
    if (p->percent < c->last_percent) c->percent_went_down = 1;
    c->last_percent = p->percent;
    if (p->description == NULL || p->percent > 100) c->percent_went_down = 1;
    if (c->abort_at && c->progress_calls >= c->abort_at) {
        c->abort_returned = 1;
        return CLOUDSYNC_ABORT;
    }
    return CLOUDSYNC_CONTINUE;
}

static void on_log(void *userdata, int64_t job_id, const char *line, size_t len) {
    struct counters *c = userdata;
    if (c->abort_returned) c->calls_after_abort++;
    if (job_id > 0 && line && strlen(line) == len) c->log_lines++;
}

/* ---- the second thread of the abort test */

struct aborter {
    cloudsync_store *store;
    int64_t task_id;
    int aborted;
};

static void *abort_when_running(void *arg) {
    struct aborter *a = arg;
    for (int i = 0; i < 300 && !a->aborted; i++) {
        char *jobs = NULL;
        cloudsync_error *err = NULL;
        if (cloudsync_job_list(a->store, a->task_id, 1, &jobs, &err) == CLOUDSYNC_OK && strstr(jobs, "\"RUNNING\"")) {
            bool was = false;
            if (cloudsync_task_abort(a->store, a->task_id, &was, NULL) == CLOUDSYNC_OK && was) a->aborted = 1;
        }
        cloudsync_string_free(jobs);
        cloudsync_error_free(err);
        usleep(50 * 1000);
    }
    return NULL;
}

static void test_misuse(void) {
    cloudsync_error *err = NULL;
    cloudsync_store *store = (cloudsync_store *)0x1; /* must be cleared on failure */
    char *out = (char *)0x1;

    /* NULL arguments everywhere give CLOUDSYNC_NULL_PARAMETER, never a crash. */
    EXPECT(cloudsync_store_open(NULL, "/tmp/x", &store, &err), CLOUDSYNC_NULL_PARAMETER, "open NULL db");
    CHECK(store == NULL, "store_out cleared on failure");
    EXPECT(cloudsync_store_open("/tmp/x", NULL, &store, &err), CLOUDSYNC_NULL_PARAMETER, "open NULL seed");
    EXPECT(cloudsync_store_open("/tmp/x", "/tmp/y", NULL, &err), CLOUDSYNC_NULL_PARAMETER, "open NULL out");
    /* error_out itself may be NULL. */
    CHECK(cloudsync_store_open(NULL, NULL, NULL, NULL) == CLOUDSYNC_NULL_PARAMETER, "NULL error_out");
    EXPECT(cloudsync_credential_list(NULL, false, &out, &err), CLOUDSYNC_NULL_PARAMETER, "list NULL store");
    CHECK(out == NULL, "json_out cleared on failure");
    EXPECT(cloudsync_task_get(NULL, 1, false, NULL, &err), CLOUDSYNC_NULL_PARAMETER, "task_get NULLs");
    EXPECT(cloudsync_task_run(NULL, 1, NULL, NULL, NULL, &err), CLOUDSYNC_NULL_PARAMETER, "run NULL store");
    EXPECT(cloudsync_task_run_onetime(NULL, NULL, NULL, NULL, NULL, &err), CLOUDSYNC_NULL_PARAMETER, "onetime NULLs");
    EXPECT(cloudsync_job_log(NULL, 1, NULL, &err), CLOUDSYNC_NULL_PARAMETER, "job_log NULLs");
    EXPECT(cloudsync_list_directory(NULL, NULL, NULL, &err), CLOUDSYNC_NULL_PARAMETER, "list_directory NULLs");
    EXPECT(cloudsync_list_buckets(NULL, 1, NULL, &err), CLOUDSYNC_NULL_PARAMETER, "list_buckets NULLs");
    EXPECT(cloudsync_listing_get(NULL, 0, NULL, &err), CLOUDSYNC_NULL_PARAMETER, "listing_get NULL");
    EXPECT(cloudsync_credential_verify(NULL, NULL, &out, &err), CLOUDSYNC_NULL_PARAMETER, "verify NULL");
    EXPECT(cloudsync_providers(NULL, &err), CLOUDSYNC_NULL_PARAMETER, "providers NULL");
    EXPECT(cloudsync_providers(&out, NULL), CLOUDSYNC_OK, "providers");
    CHECK(out && strstr(out, "\"name\": \"S3\"") == NULL && strstr(out, "\"name\":\"S3\"") && strstr(out, "credentials_schema"),
          "providers listing: %.200s", out ? out : "(null)");
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_keychain_generate(NULL, &err), CLOUDSYNC_NULL_PARAMETER, "keychain_generate NULL");
    EXPECT(cloudsync_keychain_create(NULL, "{}", &out, &err), CLOUDSYNC_NULL_PARAMETER, "keychain_create NULL store");
    EXPECT(cloudsync_keychain_list(NULL, false, &out, &err), CLOUDSYNC_NULL_PARAMETER, "keychain_list NULL store");
    EXPECT(cloudsync_keychain_delete(NULL, 1, &err), CLOUDSYNC_NULL_PARAMETER, "keychain_delete NULL store");
    EXPECT(cloudsync_store_set_log_dir(NULL, NULL, &err), CLOUDSYNC_NULL_PARAMETER, "set_log_dir NULL");
    EXPECT(cloudsync_store_set_pool_root(NULL, "/mnt", &err), CLOUDSYNC_NULL_PARAMETER, "set_pool_root NULL");
    EXPECT(cloudsync_store_set_require_dataset(NULL, false, &err), CLOUDSYNC_NULL_PARAMETER, "set_require_dataset NULL");
    CHECK(cloudsync_listing_len(NULL) == 0, "listing_len NULL");
    CHECK(!cloudsync_store_secrets_available(NULL), "secrets_available NULL");

    /* The accessors and frees accept NULL. */
    CHECK(cloudsync_error_code(NULL) == CLOUDSYNC_NULL_PARAMETER, "error_code NULL");
    CHECK(cloudsync_error_message(NULL) == NULL, "error_message NULL");
    CHECK(cloudsync_error_path(NULL, NULL) == NULL, "error_path NULL");
    CHECK(cloudsync_error_provider(NULL) == NULL, "error_provider NULL");
    CHECK(cloudsync_error_remote(NULL) == NULL, "error_remote NULL");
    CHECK(cloudsync_error_details(NULL) == NULL, "error_details NULL");
    CHECK(cloudsync_error_http_status(NULL) == 0, "error_http_status NULL");
    CHECK(!cloudsync_error_retryable(NULL), "error_retryable NULL");
    cloudsync_error_free(NULL);
    cloudsync_string_free(NULL);
    cloudsync_listing_free(NULL);
    cloudsync_store_free(NULL);

    /* Every code has a text; unknown codes too. */
    for (uint32_t c = 0; c <= 20; c++) CHECK(strcmp(cloudsync_result_text(c), "unknown result code") != 0, "text %u", c);
    CHECK(strcmp(cloudsync_result_text(12345), "unknown result code") == 0, "unknown code text");

    /* Version: header and library agree. */
    CHECK(cloudsync_version_number() ==
              CLOUDSYNC_VERSION_MAJOR * 10000 + CLOUDSYNC_VERSION_MINOR * 100 + CLOUDSYNC_VERSION_PATCH,
          "version number %u", cloudsync_version_number());
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", CLOUDSYNC_VERSION_MAJOR, CLOUDSYNC_VERSION_MINOR, CLOUDSYNC_VERSION_PATCH);
    CHECK(strcmp(cloudsync_version(), v) == 0, "version %s", cloudsync_version());
}

int main(void) {
    const char *endpoint = env("CS_ENDPOINT"), *key = env("CS_KEY"), *secret = env("CS_SECRET");
    const char *bucket = env("CS_BUCKET"), *tmp = env("CS_TMP");
    int slow = !getenv("CS_SLOW") || strcmp(getenv("CS_SLOW"), "0") != 0;
    char path[4096], path2[2048], body[8192];
    cloudsync_error *err = NULL;
    char *out = NULL;

    test_misuse();

    /* ---- store */
    char db[1024], seed[1024], pool[1024], data[1024], restored[1024];
    snprintf(db, sizeof db, "%s/state/cloudsync.db", tmp);
    snprintf(seed, sizeof seed, "%s/state/seed", tmp);
    snprintf(pool, sizeof pool, "%s/mnt", tmp);
    snprintf(data, sizeof data, "%s/mnt/tank/data", tmp);
    snprintf(restored, sizeof restored, "%s/mnt/tank/restored", tmp);
    mkdirs(data);
    mkdirs(restored);
    snprintf(path, sizeof path, "%s/docs", data);
    mkdirs(path);
    snprintf(path, sizeof path, "%s/docs/a.txt", data);
    write_file(path, 5, 1);
    snprintf(path, sizeof path, "%s/b.bin", data);
    write_file(path, 300000, 2);
    snprintf(path, sizeof path, "%s/empty", data);
    write_file(path, 0, 3);

    cloudsync_store *store = NULL;
    EXPECT(cloudsync_store_open(db, seed, &store, &err), CLOUDSYNC_OK, "store_open");
    if (!store) return 1;
    EXPECT(cloudsync_store_set_pool_root(store, pool, &err), CLOUDSYNC_OK, "set_pool_root");
    EXPECT(cloudsync_store_set_require_dataset(store, false, &err), CLOUDSYNC_OK, "set_require_dataset");
    snprintf(path, sizeof path, "%s/logs", tmp);
    EXPECT(cloudsync_store_set_log_dir(store, path, &err), CLOUDSYNC_OK, "set_log_dir");
    EXPECT(cloudsync_store_set_log_dir(store, "", &err), CLOUDSYNC_INVALID_ARGUMENT, "empty log dir");
    CHECK(cloudsync_store_secrets_available(store), "secrets available");
    struct stat st;
    CHECK(stat(seed, &st) == 0 && (st.st_mode & 0777) == 0600, "seed mode 0600");

    /* ---- credentials: bad input first */
    EXPECT(cloudsync_credential_create(store, "{not json", &out, &err), CLOUDSYNC_INVALID_JSON, "invalid json");
    EXPECT(cloudsync_credential_create(store, "{\"name\": \"\xff\xfe\"}", &out, &err), CLOUDSYNC_INVALID_UTF8, "invalid utf-8");
    err = NULL;
    int rc = cloudsync_credential_create(store, "{\"name\": \"x\", \"provider\": {\"type\": \"S3\"}}", &out, &err);
    CHECK(rc == CLOUDSYNC_INVALID_ARGUMENT, "validation code %d", rc);
    CHECK(err && cloudsync_error_details(err) && strstr(cloudsync_error_details(err), "access_key_id"),
          "validation details name the field: %s", err ? cloudsync_error_details(err) : "(null)");
    CHECK(err && cloudsync_error_details(err) && strstr(cloudsync_error_details(err), "secret_access_key"),
          "validation details hold every error, not the first: %s", err ? cloudsync_error_details(err) : "(null)");
    CHECK(out == NULL, "out-parameter NULL after a failure");
    cloudsync_error_free(err);
    err = NULL;

    snprintf(body, sizeof body,
             "{\"name\": \"test s3\", \"provider\": {\"type\": \"S3\", \"access_key_id\": \"%s\", "
             "\"secret_access_key\": \"%s\", \"endpoint\": \"%s\", \"region\": \"\", \"force_path_style\": true}}",
             key, secret, endpoint);
    EXPECT(cloudsync_credential_create(store, body, &out, &err), CLOUDSYNC_OK, "credential_create");
    long long cred = json_int(out, "id");
    CHECK(cred > 0, "credential id in %s", out);
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_credential_create(store, body, &out, &err), CLOUDSYNC_INVALID_ARGUMENT, "duplicate name");
    EXPECT(cloudsync_credential_get(store, cred, false, &out, &err), CLOUDSYNC_OK, "credential_get");
    CHECK(out && !strstr(out, secret), "secret redacted: %s", out);
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_credential_get(store, cred, true, &out, &err), CLOUDSYNC_OK, "credential_get reveal");
    CHECK(out && strstr(out, secret), "secret revealed");
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_credential_get(store, 9999, false, &out, &err), CLOUDSYNC_NOT_FOUND, "missing credential");
    EXPECT(cloudsync_credential_list(store, false, &out, &err), CLOUDSYNC_OK, "credential_list");
    CHECK(out && out[0] == '[' && strstr(out, "test s3") && !strstr(out, secret), "list: %s", out);
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_credential_update(store, cred, "{\"name\": \"renamed\"}", &out, &err), CLOUDSYNC_OK, "credential_update");
    CHECK(out && strstr(out, "renamed"), "renamed: %s", out);
    cloudsync_string_free(out);
    out = NULL;

    /* ---- the keychain: a generated pair stored, listed without its private key, deleted */
    char *pair = NULL;
    EXPECT(cloudsync_keychain_generate(&pair, &err), CLOUDSYNC_OK, "keychain_generate");
    CHECK(pair && strstr(pair, "BEGIN OPENSSH PRIVATE KEY") && strstr(pair, "ssh-ed25519 "), "pair: %.80s", pair);
    char *kbody = malloc(strlen(pair) + 128);
    sprintf(kbody, "{\"name\": \"nas key\", \"type\": \"SSH_KEY_PAIR\", \"attributes\": %s}", pair);
    EXPECT(cloudsync_keychain_create(store, kbody, &out, &err), CLOUDSYNC_OK, "keychain_create");
    long long key_id = json_int(out, "id");
    CHECK(key_id > 0 && !strstr(out, "PRIVATE KEY"), "created, redacted: %s", out);
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_keychain_create(store, kbody, &out, &err), CLOUDSYNC_INVALID_ARGUMENT, "duplicate key name");
    EXPECT(cloudsync_keychain_create(store, "{\"name\": \"bad\", \"type\": \"SSH_KEY_PAIR\", \"attributes\": "
           "{\"private_key\": \"garbage\"}}", &out, &err), CLOUDSYNC_INVALID_ARGUMENT, "bad key");
    EXPECT(cloudsync_keychain_list(store, false, &out, &err), CLOUDSYNC_OK, "keychain_list");
    CHECK(out && strstr(out, "nas key") && !strstr(out, "PRIVATE KEY"), "listed, redacted: %s", out);
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_keychain_list(store, true, &out, &err), CLOUDSYNC_OK, "keychain_list reveal");
    CHECK(out && strstr(out, "PRIVATE KEY"), "revealed");
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_keychain_delete(store, key_id, &err), CLOUDSYNC_OK, "keychain_delete");
    EXPECT(cloudsync_keychain_delete(store, key_id, &err), CLOUDSYNC_NOT_FOUND, "keychain_delete again");
    memset(pair, 0, strlen(pair));
    cloudsync_string_free(pair);
    free(kbody);

    /* verify: a body, a stored id, and a wrong secret (a successful call saying invalid). */
    const char *provider = strstr(body, "{\"type\"");
    char provider_json[4096];
    snprintf(provider_json, sizeof provider_json, "%.*s", (int)(strlen(provider) - 1), provider);
    EXPECT(cloudsync_credential_verify(NULL, provider_json, &out, &err), CLOUDSYNC_OK, "verify body");
    CHECK(out && strstr(out, "\"valid\":true"), "verify: %s", out);
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_credential_verify_id(store, cred, &out, &err), CLOUDSYNC_OK, "verify id");
    CHECK(out && strstr(out, "\"valid\":true"), "verify id: %s", out);
    cloudsync_string_free(out);
    out = NULL;
    snprintf(provider_json, sizeof provider_json,
             "{\"type\": \"S3\", \"access_key_id\": \"%s\", \"secret_access_key\": \"wrong-secret\", "
             "\"endpoint\": \"%s\", \"force_path_style\": true}",
             key, endpoint);
    EXPECT(cloudsync_credential_verify(store, provider_json, &out, &err), CLOUDSYNC_OK, "verify wrong secret");
    CHECK(out && strstr(out, "\"valid\":false") && !strstr(out, "wrong-secret"), "verify wrong: %s", out);
    cloudsync_string_free(out);
    out = NULL;

    /* ---- buckets */
    cloudsync_listing *listing = NULL;
    EXPECT(cloudsync_list_buckets(store, cred, &listing, &err), CLOUDSYNC_OK, "list_buckets");
    int found = 0;
    for (size_t i = 0; i < cloudsync_listing_len(listing); i++) {
        cloudsync_entry e;
        EXPECT(cloudsync_listing_get(listing, i, &e, &err), CLOUDSYNC_OK, "listing_get");
        if (e.is_dir && e.name_len == strlen(bucket) && memcmp(e.name, bucket, e.name_len) == 0) found = 1;
    }
    CHECK(found, "bucket %s listed", bucket);
    cloudsync_entry e;
    EXPECT(cloudsync_listing_get(listing, 1000, &e, &err), CLOUDSYNC_OUT_OF_RANGE, "listing out of range");
    cloudsync_listing_free(listing);
    listing = NULL;

    /* ---- tasks */
    char task_body[8192];
    snprintf(task_body, sizeof task_body,
             "{\"description\": \"c push\", \"path\": \"%s\", \"credentials\": %lld, "
             "\"attributes\": {\"bucket\": \"%s\", \"folder\": \"capi\"}, \"direction\": \"PUSH\", "
             "\"transfer_mode\": \"SYNC\", \"schedule\": {\"minute\": \"0\", \"hour\": \"3\"}}",
             data, cred, bucket);
    EXPECT(cloudsync_task_validate(store, task_body, &out, &err), CLOUDSYNC_OK, "task_validate");
    CHECK(out && strstr(out, "\"transfers\"") && strstr(out, "\"follow_symlinks\""), "defaults filled: %s", out);
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_task_validate(store, "{\"path\": \"/etc\"}", &out, &err), CLOUDSYNC_INVALID_ARGUMENT, "task_validate invalid");
    EXPECT(cloudsync_task_create(store, "[1, 2]", &out, &err), CLOUDSYNC_INVALID_ARGUMENT, "task not an object");
    EXPECT(cloudsync_task_create(store, task_body, &out, &err), CLOUDSYNC_OK, "task_create");
    long long task = json_int(out, "id");
    CHECK(task > 0, "task id: %s", out);
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_task_update(store, task, "{\"description\": \"c push nightly\"}", &out, &err), CLOUDSYNC_OK, "task_update");
    CHECK(out && strstr(out, "c push nightly"), "updated: %s", out);
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_task_update(store, task, "{\"transfers\": 0}", &out, &err), CLOUDSYNC_INVALID_ARGUMENT, "task_update invalid");
    EXPECT(cloudsync_task_list(store, false, &out, &err), CLOUDSYNC_OK, "task_list");
    CHECK(out && strstr(out, "c push nightly"), "task list: %s", out);
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_task_get(store, 4242, false, &out, &err), CLOUDSYNC_NOT_FOUND, "missing task");

    /* verify_task: the remote checks (V20 for a PULL of a missing folder). */
    EXPECT(cloudsync_task_verify(store, task_body, &out, &err), CLOUDSYNC_OK, "task_verify");
    CHECK(out && strstr(out, "\"valid\":true"), "verify push: %s", out);
    cloudsync_string_free(out);
    out = NULL;
    snprintf(body, sizeof body,
             "{\"path\": \"%s\", \"credentials\": %lld, \"attributes\": {\"bucket\": \"%s\", \"folder\": \"nope\"}, "
             "\"direction\": \"PULL\", \"transfer_mode\": \"COPY\"}",
             data, cred, bucket);
    EXPECT(cloudsync_task_verify(store, body, &out, &err), CLOUDSYNC_OK, "task_verify pull");
    CHECK(out && strstr(out, "\"valid\":false") && strstr(out, "Directory does not exist"), "verify pull: %s", out);
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_task_verify(store, "{\"path\": 1}", &out, &err), CLOUDSYNC_INVALID_ARGUMENT, "task_verify invalid");
    EXPECT(cloudsync_task_verify(NULL, task_body, &out, &err), CLOUDSYNC_NULL_PARAMETER, "task_verify NULL");

    /* Export with the seed into a second store, and back again without it. */
    char *exported = NULL;
    EXPECT(cloudsync_config_export(store, true, &exported, &err), CLOUDSYNC_OK, "config_export");
    CHECK(exported && strstr(exported, "\"seed\"") && !strstr(exported, secret), "export hides secrets");
    {
        char db2[1100], seed2[1100];
        snprintf(db2, sizeof db2, "%s/state2/cloudsync.db", tmp);
        snprintf(seed2, sizeof seed2, "%s/state2/seed", tmp);
        cloudsync_store *second = NULL;
        EXPECT(cloudsync_store_open(db2, seed2, &second, &err), CLOUDSYNC_OK, "open second store");
        cloudsync_store_set_pool_root(second, pool, NULL);
        EXPECT(cloudsync_config_import(second, exported, &out, &err), CLOUDSYNC_OK, "config_import");
        CHECK(out && strstr(out, "\"secrets\":true"), "import report: %s", out);
        cloudsync_string_free(out);
        out = NULL;
        EXPECT(cloudsync_credential_list(second, true, &out, &err), CLOUDSYNC_OK, "imported credentials");
        CHECK(out && strstr(out, secret), "the imported credential decrypts");
        cloudsync_string_free(out);
        out = NULL;
        EXPECT(cloudsync_config_import(second, "{\"format\": \"x\"}", &out, &err), CLOUDSYNC_INVALID_ARGUMENT,
               "import of something else");
        EXPECT(cloudsync_config_import(second, NULL, &out, &err), CLOUDSYNC_NULL_PARAMETER, "import NULL");
        cloudsync_store_free(second);
    }
    cloudsync_string_free(exported);

    /* The credential is in use now. */
    EXPECT(cloudsync_credential_delete(store, cred, &err), CLOUDSYNC_INVALID_ARGUMENT, "delete used credential");

    /* ---- run with callbacks */
    struct counters c = {0};
    c.store = store;
    cloudsync_run_options opts = {
        .size = sizeof(cloudsync_run_options), .progress = on_progress, .log = on_log, .userdata = &c};
    /* A zero size (a struct from before the size field, or one not filled in) is refused. */
    cloudsync_run_options unsized = {.progress = on_progress};
    EXPECT(cloudsync_task_run(store, task, &unsized, NULL, NULL, &err), CLOUDSYNC_INVALID_ARGUMENT, "options without size");
    int64_t job = 0;
    EXPECT(cloudsync_task_run(store, task, &opts, &job, &out, &err), CLOUDSYNC_OK, "task_run");
    CHECK(job > 0 && out && strstr(out, "\"SUCCESS\""), "outcome %s", out);
    CHECK(c.log_lines > 0, "log callback called (%d)", c.log_lines);
    CHECK(c.progress_calls == 0 || c.reads_ok > 0, "job_get from inside the progress callback (%d of %d)", c.reads_ok,
          c.progress_calls);
    CHECK(!c.percent_went_down, "progress sane");
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_job_get(store, job, &out, &err), CLOUDSYNC_OK, "job_get");
    CHECK(out && strstr(out, "\"state\":\"SUCCESS\"") && strstr(out, "logs_excerpt"), "job: %s", out);
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_job_log(store, job, &out, &err), CLOUDSYNC_OK, "job_log");
    CHECK(out && strlen(out) > 0, "job log");
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_job_list(store, 0, 10, &out, &err), CLOUDSYNC_OK, "job_list");
    char want_id[64];
    snprintf(want_id, sizeof want_id, "\"id\":%lld,", (long long)job);
    CHECK(out && out[0] == '[' && strstr(out, want_id), "job list: %s", out);
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_job_get(store, 999999, &out, &err), CLOUDSYNC_NOT_FOUND, "missing job");
    bool was = true;
    EXPECT(cloudsync_job_abort(store, job, &was, &err), CLOUDSYNC_OK, "abort finished job");
    CHECK(!was, "a finished job is not aborted");

    /* dry run: changes nothing, succeeds */
    snprintf(path, sizeof path, "%s/new.txt", data);
    write_file(path, 10, 4);
    cloudsync_run_options dry = CLOUDSYNC_RUN_OPTIONS_INIT;
    dry.dry_run = true;
    EXPECT(cloudsync_task_run(store, task, &dry, &job, NULL, &err), CLOUDSYNC_OK, "dry run");

    /* list the pushed folder */
    snprintf(body, sizeof body, "{\"credentials\": %lld, \"attributes\": {\"bucket\": \"%s\", \"folder\": \"capi\"}}",
             cred, bucket);
    EXPECT(cloudsync_list_directory(store, body, &listing, &err), CLOUDSYNC_OK, "list_directory");
    int saw_docs = 0, saw_bin = 0, saw_new = 0;
    for (size_t i = 0; i < cloudsync_listing_len(listing); i++) {
        cloudsync_entry en;
        cloudsync_listing_get(listing, i, &en, NULL);
        if (en.is_dir && strcmp(en.name, "docs") == 0) saw_docs = 1;
        if (!en.is_dir && strcmp(en.name, "b.bin") == 0 && en.size == 300000 && en.name_len == 5) saw_bin = 1;
        if (strcmp(en.name, "new.txt") == 0) saw_new = 1;
    }
    CHECK(saw_docs && saw_bin, "pushed entries listed (%zu)", cloudsync_listing_len(listing));
    CHECK(!saw_new, "the dry run uploaded nothing");
    cloudsync_listing_free(listing);
    listing = NULL;
    EXPECT(cloudsync_list_directory(store, "{\"attributes\": {}}", &listing, &err), CLOUDSYNC_INVALID_ARGUMENT, "list_directory without credentials");
    CHECK(listing == NULL, "no listing on failure");

    /* ---- restore: the reversed task pulls everything back */
    snprintf(body, sizeof body, "{\"description\": \"back\", \"transfer_mode\": \"COPY\", \"path\": \"%s\"}", restored);
    EXPECT(cloudsync_task_restore(store, task, body, &out, &err), CLOUDSYNC_OK, "task_restore");
    long long rtask = json_int(out, "id");
    CHECK(out && strstr(out, "\"PULL\"") && strstr(out, "\"enabled\":false"), "restore task: %s", out);
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_task_run(store, rtask, NULL, &job, NULL, &err), CLOUDSYNC_OK, "run restore");
    snprintf(path, sizeof path, "%s/b.bin", data);
    snprintf(path2, sizeof path2, "%s/b.bin", restored);
    CHECK(same_file(path, path2), "b.bin restored byte for byte");
    snprintf(path, sizeof path, "%s/docs/a.txt", data);
    snprintf(path2, sizeof path2, "%s/docs/a.txt", restored);
    CHECK(same_file(path, path2), "docs/a.txt restored");

    /* ---- a failing job: the remote folder of a PULL does not exist */
    snprintf(body, sizeof body,
             "{\"path\": \"%s\", \"credentials\": %lld, \"attributes\": {\"bucket\": \"%s\", \"folder\": \"nope\"}, "
             "\"direction\": \"PULL\", \"transfer_mode\": \"COPY\"}",
             restored, cred, bucket);
    err = NULL;
    rc = cloudsync_task_run_onetime(store, body, NULL, &job, &out, &err);
    CHECK(rc == CLOUDSYNC_JOB_FAILED, "onetime failing pull: %d", rc);
    CHECK(err && strstr(cloudsync_error_message(err), "does not exist"), "job error: %s",
          err ? cloudsync_error_message(err) : "-");
    CHECK(err && cloudsync_error_provider(err) && strcmp(cloudsync_error_provider(err), "S3") == 0, "provider");
    CHECK(err && strchr(cloudsync_error_message(err), '\n') == NULL, "one sentence: %s",
          err ? cloudsync_error_message(err) : "-");
    CHECK(err && cloudsync_error_remote(err) && strstr(cloudsync_error_remote(err), "/nope"), "remote named: %s",
          err && cloudsync_error_remote(err) ? cloudsync_error_remote(err) : "-");
    CHECK(err && cloudsync_error_details(err) && strstr(cloudsync_error_details(err), "\"exit_code\":3")
              && strstr(cloudsync_error_details(err), "\"kind\":\"dir_not_found\""),
          "details: %s", err && cloudsync_error_details(err) ? cloudsync_error_details(err) : "-");
    CHECK(out && strstr(out, "\"FAILED\""), "failed outcome: %s", out);
    cloudsync_error_free(err);
    cloudsync_string_free(out);
    out = NULL;
    EXPECT(cloudsync_task_run_onetime(store, "{\"path\": 5}", NULL, &job, &out, &err), CLOUDSYNC_INVALID_ARGUMENT, "onetime invalid body");
    CHECK(out == NULL, "no outcome for an invalid body");
    snprintf(body, sizeof body,
             "{\"path\": \"%s\", \"credentials\": %lld, \"attributes\": {\"bucket\": \"%s\", \"folder\": \"once\"}, "
             "\"direction\": \"PUSH\", \"transfer_mode\": \"COPY\"}",
             data, cred, bucket);
    EXPECT(cloudsync_task_run_onetime(store, body, NULL, &job, NULL, &err), CLOUDSYNC_OK, "onetime push");

    if (slow) {
        /* ---- cancel from inside the progress callback: 8 MiB at 1 MiB/s */
        snprintf(path, sizeof path, "%s/slow", tmp);
        snprintf(path2, sizeof path2, "%s/mnt/tank/slow", tmp);
        mkdirs(path2);
        snprintf(path, sizeof path, "%s/big.bin", path2);
        write_file(path, 8 << 20, 5);
        snprintf(body, sizeof body,
                 "{\"description\": \"slow\", \"path\": \"%s\", \"credentials\": %lld, "
                 "\"attributes\": {\"bucket\": \"%s\", \"folder\": \"slow\"}, \"direction\": \"PUSH\", "
                 "\"transfer_mode\": \"COPY\", \"bwlimit\": [{\"time\": \"00:00\", \"bandwidth\": 1048576}]}",
                 path2, cred, bucket);
        EXPECT(cloudsync_task_create(store, body, &out, &err), CLOUDSYNC_OK, "slow task");
        long long slow_task = json_int(out, "id");
        cloudsync_string_free(out);
        out = NULL;
        struct counters cc = {.abort_at = 1};
        cloudsync_run_options copts = {.size = sizeof copts, .progress = on_progress, .log = on_log, .userdata = &cc};
        time_t t0 = time(NULL);
        EXPECT(cloudsync_task_run(store, slow_task, &copts, &job, &out, &err), CLOUDSYNC_ABORTED, "cancel from callback");
        CHECK(time(NULL) - t0 < 7, "aborted quickly (%ld s)", (long)(time(NULL) - t0));
        CHECK(out && strstr(out, "\"ABORTED\""), "aborted outcome: %s", out);
        CHECK(cc.abort_returned && cc.calls_after_abort == 0, "no callback after ABORT (%d came)", cc.calls_after_abort);
        cloudsync_string_free(out);
        out = NULL;

        /* ---- abort from a second thread, through the same handle */
        struct aborter a = {.store = store, .task_id = slow_task};
        pthread_t th;
        pthread_create(&th, NULL, abort_when_running, &a);
        t0 = time(NULL);
        EXPECT(cloudsync_task_run(store, slow_task, NULL, &job, NULL, &err), CLOUDSYNC_ABORTED, "abort from a thread");
        pthread_join(th, NULL);
        CHECK(a.aborted, "the thread saw the job running and aborted it");
        CHECK(time(NULL) - t0 < 7, "aborted quickly (%ld s)", (long)(time(NULL) - t0));
        EXPECT(cloudsync_job_get(store, job, &out, &err), CLOUDSYNC_OK, "aborted job");
        CHECK(out && strstr(out, "\"state\":\"ABORTED\""), "job state: %s", out);
        cloudsync_string_free(out);
        out = NULL;
        EXPECT(cloudsync_task_delete(store, slow_task, &err), CLOUDSYNC_OK, "delete slow task");
    }

    /* ---- deletion */
    EXPECT(cloudsync_task_delete(store, task, &err), CLOUDSYNC_OK, "task_delete");
    EXPECT(cloudsync_task_delete(store, rtask, &err), CLOUDSYNC_OK, "task_delete restore");
    EXPECT(cloudsync_task_delete(store, task, &err), CLOUDSYNC_NOT_FOUND, "task_delete again");
    EXPECT(cloudsync_credential_delete(store, cred, &err), CLOUDSYNC_OK, "credential_delete");

    /* A second handle on the same database sees the same data. */
    cloudsync_store *other = NULL;
    EXPECT(cloudsync_store_open(db, seed, &other, &err), CLOUDSYNC_OK, "second open");
    EXPECT(cloudsync_task_list(other, false, &out, &err), CLOUDSYNC_OK, "list on second handle");
    CHECK(out && strcmp(out, "[]") == 0, "no tasks left: %s", out);
    cloudsync_string_free(out);
    cloudsync_store_free(other);

    cloudsync_store_free(store);
    printf("%d passed, %d failed\n", checks - failures, failures);
    return failures ? 1 : 0;
}
