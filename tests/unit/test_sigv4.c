/*
 * test_sigv4.c - SigV4 known answers (AWS test suite, botocore-computed
 * PutEvents cases), canonicalisation rules, Authorization format/parsing.
 */
#include <check.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws/sigv4.h"
#include "support/check_main.h"

#define AKID   "AKIDEXAMPLE"
#define SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define DATE   "20150830T123600Z"

#define PUTEVENTS_BODY                                                                             \
    "{\"Entries\":[{\"Source\":\"com.example.app\",\"DetailType\":\"OrderPlaced\","                \
    "\"Detail\":\"{\\\"id\\\":1}\",\"EventBusName\":\"default\"}]}"

#define MAX_TEST_HEADERS 8

typedef struct vector {
    const char *name;
    const char *method;
    const char *body;
    const char *service;
    const char *host;
    const char *content_type; /* NULL: no content-type header */
    const char *target;       /* NULL: no x-amz-target header */
    const char *token;        /* NULL: no session token */
    const char *signed_headers;
    const char *creq_sha256; /* NULL: not published */
    const char *signature;
} vector;

static const vector vectors[] = {
    {"get-vanilla", "GET", "", "service", "example.amazonaws.com", NULL, NULL, NULL,
     "host;x-amz-date", "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
    {"post-x-www-form-urlencoded", "POST", "Param1=value1", "service", "example.amazonaws.com",
     "application/x-www-form-urlencoded", NULL, NULL, "content-type;host;x-amz-date",
     "42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
     "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a"},
    {"putevents", "POST", PUTEVENTS_BODY, "events", "events.us-east-1.amazonaws.com",
     "application/x-amz-json-1.1", "AWSEvents.PutEvents", NULL,
     "content-type;host;x-amz-date;x-amz-target", NULL,
     "0640c93cf3f0abd313151ed49471d9cceaeef3da86a91336ff78925b83d061d0"},
    {"putevents-session-token", "POST", PUTEVENTS_BODY, "events", "events.us-east-1.amazonaws.com",
     "application/x-amz-json-1.1", "AWSEvents.PutEvents", "EXAMPLETOKEN",
     "content-type;host;x-amz-date;x-amz-security-token;x-amz-target", NULL,
     "161acd4f193c3ef12596b9fd8404ad2f517e442e87816f7b4b36306aa20293c1"},
};

/* Builds the request for a vector; headers are given in a scrambled order/case. */
static size_t vector_headers(const vector *v, sigv4_header *hs)
{
    size_t n = 0;
    hs[n++] = (sigv4_header){"X-Amz-Date", DATE};
    if (v->target != NULL)
        hs[n++] = (sigv4_header){"X-Amz-Target", v->target};
    hs[n++] = (sigv4_header){"Host", v->host};
    if (v->token != NULL)
        hs[n++] = (sigv4_header){"X-Amz-Security-Token", v->token};
    if (v->content_type != NULL)
        hs[n++] = (sigv4_header){"Content-Type", v->content_type};
    return n;
}

static sigv4_request vector_request(const vector *v, sigv4_header *hs)
{
    sigv4_request r = {v->method, "/", "", hs, vector_headers(v, hs), v->body, strlen(v->body)};
    return r;
}

START_TEST(test_known_answer_canonical_request_and_signature)
{
    const vector *v = &vectors[_i];
    sigv4_header hs[MAX_TEST_HEADERS];
    sigv4_request req = vector_request(v, hs);
    sigv4_key key = {AKID, SECRET, v->token};
    sigv4_scope scope = {DATE, "us-east-1", v->service};
    strbuf creq, list, sts;
    or_error err = {{0}};
    char hash[65], sig[65];

    strbuf_init(&creq, 1 << 16);
    strbuf_init(&list, 1024);
    strbuf_init(&sts, 1024);
    ck_assert_msg(sigv4_canonical_request(&req, &creq, &list, &err) == OR_OK, "%s: %s", v->name,
                  err.msg);
    ck_assert_str_eq(strbuf_cstr(&list), v->signed_headers);
    if (v->creq_sha256 != NULL) {
        sigv4_sha256_hex(creq.data, creq.len, hash);
        ck_assert_msg(strcmp(hash, v->creq_sha256) == 0, "%s: canonical request hash %s", v->name,
                      hash);
    }
    ck_assert_msg(sigv4_signature(&req, &key, &scope, sig, &sts, &err) == OR_OK, "%s: %s", v->name,
                  err.msg);
    ck_assert_msg(strcmp(sig, v->signature) == 0, "%s: signature %s", v->name, sig);
    /* string to sign ends in the canonical request hash */
    sigv4_sha256_hex(creq.data, creq.len, hash);
    ck_assert_msg(strstr(strbuf_cstr(&sts), hash) != NULL, "%s", v->name);
    const char *prefix = "AWS4-HMAC-SHA256\n" DATE "\n20150830/us-east-1/";
    ck_assert(strncmp(strbuf_cstr(&sts), prefix, strlen(prefix)) == 0);
    strbuf_free(&creq);
    strbuf_free(&list);
    strbuf_free(&sts);
}
END_TEST

START_TEST(test_get_vanilla_canonical_request_text)
{
    sigv4_header hs[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", DATE}};
    sigv4_request req = {"GET", "/", "", hs, 2, NULL, 0};
    strbuf creq;
    or_error err;
    strbuf_init(&creq, 4096);
    ck_assert_int_eq(sigv4_canonical_request(&req, &creq, NULL, &err), OR_OK);
    ck_assert_str_eq(strbuf_cstr(&creq),
                     "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:" DATE "\n\n"
                     "host;x-amz-date\n"
                     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    strbuf_free(&creq);
}
END_TEST

START_TEST(test_signing_key_iam_known_answer)
{
    unsigned char k[32];
    char hex[65];
    static const char digits[] = "0123456789abcdef";
    sigv4_signing_key(SECRET, "20150830", "us-east-1", "iam", k);
    for (int i = 0; i < 32; i++) {
        hex[2 * i] = digits[k[i] >> 4];
        hex[2 * i + 1] = digits[k[i] & 15];
    }
    hex[64] = '\0';
    ck_assert_str_eq(hex, "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9");
}
END_TEST

START_TEST(test_sha256_hex_of_putevents_body_and_empty)
{
    char out[65];
    sigv4_sha256_hex(PUTEVENTS_BODY, strlen(PUTEVENTS_BODY), out);
    ck_assert_str_eq(out, "8247e9b90c3ecdb3c16b34c25f1a3b7fe0a3356175352751881864929b6bc8a1");
    sigv4_sha256_hex(NULL, 0, out);
    ck_assert_str_eq(out, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}
END_TEST

START_TEST(test_amz_date_formats_utc)
{
    char out[17];
    sigv4_amz_date((time_t)1440938160, out); /* 2015-08-30 12:36:00 UTC */
    ck_assert_str_eq(out, DATE);
    sigv4_amz_date((time_t)0, out);
    ck_assert_str_eq(out, "19700101T000000Z");
}
END_TEST

/* Value normalisation: each raw value must canonicalise to the expected one. */
static const struct {
    const char *raw;
    const char *canon;
} value_cases[] = {
    {"plain", "plain"},
    {"  leading", "leading"},
    {"trailing   ", "trailing"},
    {"\t tabs and  spaces \t", "tabs and spaces"},
    {"a   b\t\tc  \t d", "a b c d"},
    {"", ""},
    {"   ", ""},
    {"\"quoted  stays  folded\"", "\"quoted stays folded\""},
};

START_TEST(test_header_value_is_trimmed_and_folded)
{
    sigv4_header hs[] = {{"Host", "h"}, {"X-Test", value_cases[_i].raw}};
    sigv4_request req = {"POST", "/", "", hs, 2, "", 0};
    strbuf creq, want;
    or_error err;
    strbuf_init(&creq, 4096);
    strbuf_init(&want, 256);
    ck_assert_int_eq(sigv4_canonical_request(&req, &creq, NULL, &err), OR_OK);
    ck_assert_int_eq(strbuf_printf(&want, "\nx-test:%s\n\n", value_cases[_i].canon), OR_OK);
    ck_assert_msg(strstr(strbuf_cstr(&creq), strbuf_cstr(&want)) != NULL, "raw \"%s\" gave:\n%s",
                  value_cases[_i].raw, strbuf_cstr(&creq));
    strbuf_free(&creq);
    strbuf_free(&want);
}
END_TEST

START_TEST(test_header_name_case_and_order_do_not_change_signature)
{
    sigv4_header a[] = {{"content-type", "application/x-amz-json-1.1"},
                        {"host", "events.us-east-1.amazonaws.com"},
                        {"x-amz-date", DATE},
                        {"x-amz-target", "AWSEvents.PutEvents"}};
    sigv4_header b[] = {{"X-AMZ-TARGET", "AWSEvents.PutEvents"},
                        {"HoSt", "events.us-east-1.amazonaws.com"},
                        {"Content-TYPE", "  application/x-amz-json-1.1 "},
                        {"X-Amz-Date", DATE}};
    sigv4_request ra = {"POST", "/", "", a, 4, PUTEVENTS_BODY, strlen(PUTEVENTS_BODY)};
    sigv4_request rb = ra;
    rb.headers = b;
    sigv4_key key = {AKID, SECRET, NULL};
    sigv4_scope scope = {DATE, "us-east-1", "events"};
    char sa[65], sb[65];
    or_error err;
    ck_assert_int_eq(sigv4_signature(&ra, &key, &scope, sa, NULL, &err), OR_OK);
    ck_assert_int_eq(sigv4_signature(&rb, &key, &scope, sb, NULL, &err), OR_OK);
    ck_assert_str_eq(sa, sb);
    ck_assert_str_eq(sa, "0640c93cf3f0abd313151ed49471d9cceaeef3da86a91336ff78925b83d061d0");
}
END_TEST

static const struct {
    const char *first;
    const char *second;
} duplicate_cases[] = {
    {"Host", "host"},
    {"x-amz-date", "X-AMZ-DATE"},
    {"X-Custom", "X-Custom"},
};

START_TEST(test_duplicate_header_is_rejected_with_its_name)
{
    sigv4_header hs[] = {{duplicate_cases[_i].first, "v1"},
                         {"Other", "x"},
                         {duplicate_cases[_i].second, "v2"},
                         {"Host", "h"}};
    size_t n = strcasecmp(duplicate_cases[_i].first, "host") == 0 ? 3 : 4;
    sigv4_request req = {"POST", "/", "", hs, n, "", 0};
    strbuf creq;
    or_error err = {{0}};
    char lower[64];
    size_t i;
    for (i = 0; duplicate_cases[_i].first[i] != '\0'; i++) {
        char c = duplicate_cases[_i].first[i];
        lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    lower[i] = '\0';
    strbuf_init(&creq, 4096);
    ck_assert_int_eq(sigv4_canonical_request(&req, &creq, NULL, &err), OR_ERR);
    ck_assert_msg(strstr(err.msg, "duplicate") != NULL && strstr(err.msg, lower) != NULL, "%s",
                  err.msg);
    strbuf_free(&creq);
}
END_TEST

START_TEST(test_invalid_header_inputs_are_rejected)
{
    const sigv4_header bad[][2] = {
        {{"Host", "h"}, {"", "empty name"}},
        {{"Host", "h"}, {"Bad Name", "space in name"}},
        {{"Host", "h"}, {"Bad:Name", "colon in name"}},
        {{"Host", "h"}, {"X-Inject", "a\r\nx-evil: 1"}},
        {{"Host", "h"}, {"X-Nl", "a\nb"}},
        {{"Host", "h"}, {"X-Null", NULL}},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        sigv4_request req = {"POST", "/", "", bad[i], 2, "", 0};
        strbuf creq;
        or_error err = {{0}};
        strbuf_init(&creq, 4096);
        ck_assert_msg(sigv4_canonical_request(&req, &creq, NULL, &err) == OR_ERR, "case %zu", i);
        ck_assert_msg(err.msg[0] != '\0', "case %zu has no message", i);
        strbuf_free(&creq);
    }
}
END_TEST

START_TEST(test_canonical_request_respects_output_limit)
{
    sigv4_header hs[] = {{"Host", "example.amazonaws.com"}, {"X-Amz-Date", DATE}};
    sigv4_request req = {"GET", "/", "", hs, 2, NULL, 0};
    strbuf small;
    or_error err = {{0}};
    strbuf_init(&small, 32);
    ck_assert_int_eq(sigv4_canonical_request(&req, &small, NULL, &err), OR_ERR);
    ck_assert(strstr(err.msg, "canonical request") != NULL);
    strbuf_free(&small);
}
END_TEST

/* Each case breaks one signing precondition. */
START_TEST(test_signature_rejects_bad_scope_key_and_missing_headers)
{
    sigv4_header ok[] = {{"Host", "h"}, {"X-Amz-Date", DATE}};
    sigv4_header no_host[] = {{"X-Amz-Date", DATE}};
    sigv4_header no_date[] = {{"Host", "h"}};
    sigv4_header other_date[] = {{"Host", "h"}, {"X-Amz-Date", "20150830T123601Z"}};
    struct {
        const char *what;
        const sigv4_header *hs;
        size_t n;
        sigv4_key key;
        sigv4_scope scope;
    } cases[] = {
        {"short date", ok, 2, {AKID, SECRET, NULL}, {"20150830T12360Z", "us-east-1", "events"}},
        {"no T", ok, 2, {AKID, SECRET, NULL}, {"20150830X123600Z", "us-east-1", "events"}},
        {"no Z", ok, 2, {AKID, SECRET, NULL}, {"20150830T1236000", "us-east-1", "events"}},
        {"long date", ok, 2, {AKID, SECRET, NULL}, {"20150830T123600ZZ", "us-east-1", "events"}},
        {"letters in date", ok, 2, {AKID, SECRET, NULL}, {"2015O830T123600Z", "us-east-1", "e"}},
        {"null date", ok, 2, {AKID, SECRET, NULL}, {NULL, "us-east-1", "events"}},
        {"empty region", ok, 2, {AKID, SECRET, NULL}, {DATE, "", "events"}},
        {"slash region", ok, 2, {AKID, SECRET, NULL}, {DATE, "us/east", "events"}},
        {"empty service", ok, 2, {AKID, SECRET, NULL}, {DATE, "us-east-1", ""}},
        {"empty akid", ok, 2, {"", SECRET, NULL}, {DATE, "us-east-1", "events"}},
        {"akid with slash", ok, 2, {"AK/ID", SECRET, NULL}, {DATE, "us-east-1", "events"}},
        {"empty secret", ok, 2, {AKID, "", NULL}, {DATE, "us-east-1", "events"}},
        {"no host", no_host, 1, {AKID, SECRET, NULL}, {DATE, "us-east-1", "events"}},
        {"no x-amz-date", no_date, 1, {AKID, SECRET, NULL}, {DATE, "us-east-1", "events"}},
        {"date mismatch", other_date, 2, {AKID, SECRET, NULL}, {DATE, "us-east-1", "events"}},
        {"token unsigned", ok, 2, {AKID, SECRET, "TOKEN"}, {DATE, "us-east-1", "events"}},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        sigv4_request req = {"POST", "/", "", cases[i].hs, cases[i].n, "", 0};
        char sig[65] = "x";
        or_error err = {{0}};
        ck_assert_msg(sigv4_signature(&req, &cases[i].key, &cases[i].scope, sig, NULL, &err) ==
                          OR_ERR,
                      "%s was accepted", cases[i].what);
        ck_assert_msg(err.msg[0] != '\0', "%s: no message", cases[i].what);
        ck_assert_msg(strstr(err.msg, SECRET) == NULL, "%s: secret in message", cases[i].what);
        ck_assert_msg(sig[0] == '\0', "%s: signature left in out", cases[i].what);
    }
}
END_TEST

START_TEST(test_changing_one_body_or_secret_byte_changes_signature)
{
    const vector *v = &vectors[2];
    sigv4_header hs[MAX_TEST_HEADERS];
    sigv4_request req = vector_request(v, hs);
    sigv4_scope scope = {DATE, "us-east-1", "events"};
    sigv4_key key = {AKID, SECRET, NULL};
    char base[65], sig[65];
    or_error err;
    size_t len = strlen(PUTEVENTS_BODY);
    char *body = malloc(len + 1);
    char secret[] = SECRET;

    ck_assert_ptr_nonnull(body);
    memcpy(body, PUTEVENTS_BODY, len + 1);
    req.body = body;
    ck_assert_int_eq(sigv4_signature(&req, &key, &scope, base, NULL, &err), OR_OK);
    ck_assert_str_eq(base, v->signature);
    for (size_t i = 0; i < len; i++) {
        body[i] ^= 0x01;
        ck_assert_int_eq(sigv4_signature(&req, &key, &scope, sig, NULL, &err), OR_OK);
        ck_assert_msg(strcmp(sig, base) != 0, "body byte %zu did not change the signature", i);
        body[i] ^= 0x01;
    }
    req.body_len = len - 1;
    ck_assert_int_eq(sigv4_signature(&req, &key, &scope, sig, NULL, &err), OR_OK);
    ck_assert_str_ne(sig, base);
    req.body_len = len;

    key.secret_access_key = secret;
    for (size_t i = 0; i < strlen(secret); i++) {
        secret[i] ^= 0x01;
        ck_assert_int_eq(sigv4_signature(&req, &key, &scope, sig, NULL, &err), OR_OK);
        ck_assert_msg(strcmp(sig, base) != 0, "secret byte %zu did not change the signature", i);
        secret[i] ^= 0x01;
    }
    ck_assert_int_eq(sigv4_signature(&req, &key, &scope, sig, NULL, &err), OR_OK);
    ck_assert_str_eq(sig, base);
    free(body);
}
END_TEST

START_TEST(test_authorization_header_format)
{
    const vector *v = &vectors[3];
    sigv4_header hs[MAX_TEST_HEADERS];
    sigv4_request req = vector_request(v, hs);
    sigv4_key key = {AKID, SECRET, v->token};
    sigv4_scope scope = {DATE, "us-east-1", "events"};
    strbuf out;
    or_error err;
    sigv4_auth_parsed parsed;

    strbuf_init(&out, 1024);
    ck_assert_int_eq(strbuf_puts(&out, "stale content"), OR_OK);
    ck_assert_int_eq(sigv4_authorization(&req, &key, &scope, &out, &err), OR_OK);
    ck_assert_str_eq(strbuf_cstr(&out),
                     "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/events/"
                     "aws4_request, SignedHeaders=content-type;host;x-amz-date;"
                     "x-amz-security-token;x-amz-target, Signature="
                     "161acd4f193c3ef12596b9fd8404ad2f517e442e87816f7b4b36306aa20293c1");
    /* what we produce, we parse back */
    ck_assert_int_eq(sigv4_parse_authorization(strbuf_cstr(&out), &parsed, &err), OR_OK);
    ck_assert_str_eq(parsed.access_key_id, AKID);
    ck_assert_str_eq(parsed.signature, v->signature);
    ck_assert_str_eq(parsed.signed_headers, v->signed_headers);
    strbuf_free(&out);
}
END_TEST

#define GOOD_SIG "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"

static const char *const good_auth[] = {
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
    "SignedHeaders=host;x-amz-date, Signature=" GOOD_SIG,
    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request,"
    "SignedHeaders=host;x-amz-date,Signature=" GOOD_SIG,
    "  AWS4-HMAC-SHA256   Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request ,  "
    "SignedHeaders=host;x-amz-date ,Signature=" GOOD_SIG "  ",
    "AWS4-HMAC-SHA256 Signature=" GOOD_SIG ", SignedHeaders=host;x-amz-date, "
    "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request",
};

START_TEST(test_parse_authorization_accepts_good_forms)
{
    sigv4_auth_parsed p;
    or_error err = {{0}};
    ck_assert_msg(sigv4_parse_authorization(good_auth[_i], &p, &err) == OR_OK, "%s", err.msg);
    ck_assert_str_eq(p.access_key_id, "AKIDEXAMPLE");
    ck_assert_str_eq(p.date8, "20150830");
    ck_assert_str_eq(p.region, "us-east-1");
    ck_assert_str_eq(p.service, "service");
    ck_assert_str_eq(p.signed_headers, "host;x-amz-date");
    ck_assert_str_eq(p.signature, GOOD_SIG);
}
END_TEST

#define CRED "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request"
#define SH   "SignedHeaders=host;x-amz-date"
#define SIG  "Signature=" GOOD_SIG
#define ALG  "AWS4-HMAC-SHA256 "

/* Each malformed input, and a word the error message must contain. */
static const struct {
    const char *value;
    const char *reason;
} bad_auth[] = {
    {"", "empty"},
    {"   ", "empty"},
    {"AWS4-HMAC-SHA256", "no Credential"},
    {"AWS4-HMAC-SHA1 " CRED ", " SH ", " SIG, "algorithm"},
    {"aws4-hmac-sha256 " CRED ", " SH ", " SIG, "algorithm"},
    {"AWS4-ECDSA-P256-SHA256 " CRED ", " SH ", " SIG, "algorithm"},
    {"AWS4-HMAC-SHA256Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, " SH ", " SIG,
     "algorithm"},
    {"Basic dXNlcjpwYXNz", "algorithm"},
    {ALG SH ", " SIG, "Credential is missing"},
    {ALG CRED ", " SIG, "SignedHeaders is missing"},
    {ALG CRED ", " SH, "Signature is missing"},
    {ALG CRED ", " SH ", " SIG ",", "empty parameter"},
    {ALG CRED ",, " SH ", " SIG, "empty parameter"},
    {ALG CRED ", " SH ", " SIG ", " SIG, "twice"},
    {ALG CRED ", " SH ", " SIG ", Extra=1", "unknown parameter"},
    {ALG CRED ", " SH ", signature=" GOOD_SIG, "unknown parameter"},
    {ALG CRED ", " SH ", Signature", "without '='"},
    {ALG CRED ", " SH ", Signature=", "empty value"},
    {ALG CRED ", " SH ", Signature=" GOOD_SIG "0", "64 hex"},
    {ALG CRED ", " SH ", Signature=5fa00fa3", "64 hex"},
    {ALG CRED ", " SH
              ", Signature=5FA00FA31553B73EBF1942676E86291E8372FF2A2260956D9B8AAE1D763FBF31",
     "lowercase hex"},
    {ALG CRED ", " SH
              ", Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbfzz",
     "lowercase hex"},
    {ALG "Credential=AKIDEXAMPLE/20150830/us-east-1/service, " SH ", " SIG, "credential scope"},
    {ALG "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request/x, " SH ", " SIG,
     "more than 5"},
    {ALG "Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_requesT, " SH ", " SIG,
     "aws4_request"},
    {ALG "Credential=/20150830/us-east-1/service/aws4_request, " SH ", " SIG, "key id"},
    {ALG "Credential=AKIDEXAMPLE/2015083/us-east-1/service/aws4_request, " SH ", " SIG, "date"},
    {ALG "Credential=AKIDEXAMPLE/2015O830/us-east-1/service/aws4_request, " SH ", " SIG, "date"},
    {ALG "Credential=AKIDEXAMPLE/20150830//service/aws4_request, " SH ", " SIG, "region"},
    {ALG "Credential=AKIDEXAMPLE/20150830/US-EAST-1/service/aws4_request, " SH ", " SIG, "region"},
    {ALG "Credential=AKIDEXAMPLE/20150830/us-east-1//aws4_request, " SH ", " SIG, "service"},
    {ALG "Credential=AKIDEXAMPLE/20150830/us-east-1/serv ice/aws4_request, " SH ", " SIG, "space"},
    {ALG CRED ", SignedHeaders=host;;x-amz-date, " SIG, "empty name"},
    {ALG CRED ", SignedHeaders=host;x-amz-date;, " SIG, "empty name"},
    {ALG CRED ", SignedHeaders=;host, " SIG, "empty name"},
    {ALG CRED ", SignedHeaders=Host;x-amz-date, " SIG, "lowercase"},
    {ALG CRED ", SignedHeaders=x-amz-date;host, " SIG, "sorted"},
    {ALG CRED ", SignedHeaders=host;host, " SIG, "sorted"},
    {ALG CRED ", SignedHeaders=host:x, " SIG, "lowercase"},
    {ALG CRED ", " SH ", " SIG "\r\nX-Evil: 1", "control"},
    {ALG CRED ", " SH ", " SIG "\xc3\xa9", "non-ASCII"},
};

START_TEST(test_parse_authorization_rejects_malformed_with_reason)
{
    sigv4_auth_parsed p;
    or_error err = {{0}};
    memset(&p, 'x', sizeof(p));
    ck_assert_msg(sigv4_parse_authorization(bad_auth[_i].value, &p, &err) == OR_ERR, "accepted: %s",
                  bad_auth[_i].value);
    ck_assert_msg(strstr(err.msg, bad_auth[_i].reason) != NULL, "input %s: reason \"%s\"",
                  bad_auth[_i].value, err.msg);
    /* nothing half-parsed is left behind */
    ck_assert_str_eq(p.access_key_id, "");
    ck_assert_str_eq(p.signature, "");
}
END_TEST

START_TEST(test_parse_authorization_rejects_overlong_fields)
{
    strbuf v;
    sigv4_auth_parsed p;
    or_error err;
    /* key id of 200 characters */
    strbuf_init(&v, 16384);
    ck_assert_int_eq(strbuf_puts(&v, ALG "Credential="), OR_OK);
    for (int i = 0; i < 200; i++)
        ck_assert_int_eq(strbuf_putc(&v, 'A'), OR_OK);
    ck_assert_int_eq(strbuf_puts(&v, "/20150830/us-east-1/service/aws4_request, " SH ", " SIG),
                     OR_OK);
    ck_assert_int_eq(sigv4_parse_authorization(strbuf_cstr(&v), &p, &err), OR_ERR);
    ck_assert_msg(strstr(err.msg, "too long") != NULL, "%s", err.msg);

    /* region of 100 characters */
    strbuf_reset(&v);
    ck_assert_int_eq(strbuf_puts(&v, ALG "Credential=AKID/20150830/"), OR_OK);
    for (int i = 0; i < 100; i++)
        ck_assert_int_eq(strbuf_putc(&v, 'r'), OR_OK);
    ck_assert_int_eq(strbuf_puts(&v, "/service/aws4_request, " SH ", " SIG), OR_OK);
    ck_assert_int_eq(sigv4_parse_authorization(strbuf_cstr(&v), &p, &err), OR_ERR);
    ck_assert_msg(strstr(err.msg, "region") != NULL, "%s", err.msg);

    /* signed headers list of about 1500 bytes */
    strbuf_reset(&v);
    ck_assert_int_eq(strbuf_puts(&v, ALG CRED ", SignedHeaders=host"), OR_OK);
    for (int i = 0; i < 150; i++)
        ck_assert_int_eq(strbuf_printf(&v, ";x-h%06d", i), OR_OK);
    ck_assert_int_eq(strbuf_puts(&v, ", " SIG), OR_OK);
    ck_assert_int_eq(sigv4_parse_authorization(strbuf_cstr(&v), &p, &err), OR_ERR);
    ck_assert_msg(strstr(err.msg, "signed headers list is longer") != NULL, "%s", err.msg);

    /* whole header beyond the limit */
    strbuf_reset(&v);
    ck_assert_int_eq(strbuf_puts(&v, ALG CRED ", " SH ", " SIG), OR_OK);
    for (int i = 0; i < 5000; i++)
        ck_assert_int_eq(strbuf_putc(&v, ' '), OR_OK);
    ck_assert_int_eq(sigv4_parse_authorization(strbuf_cstr(&v), &p, &err), OR_ERR);
    ck_assert_msg(strstr(err.msg, "longer than") != NULL, "%s", err.msg);

    ck_assert_int_eq(sigv4_parse_authorization(NULL, &p, &err), OR_ERR);
    strbuf_free(&v);
}
END_TEST

START_TEST(test_hex_equal)
{
    ck_assert_int_eq(sigv4_hex_equal(GOOD_SIG, GOOD_SIG), 1);
    ck_assert_int_eq(sigv4_hex_equal("", ""), 1);
    ck_assert_int_eq(sigv4_hex_equal(GOOD_SIG,
                                     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d7"
                                     "63fbf30"),
                     0);
    ck_assert_int_eq(sigv4_hex_equal(GOOD_SIG,
                                     "4fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d7"
                                     "63fbf31"),
                     0);
    ck_assert_int_eq(sigv4_hex_equal(GOOD_SIG, "5fa00fa3"), 0);
    ck_assert_int_eq(sigv4_hex_equal("5fa00fa3", GOOD_SIG), 0);
    ck_assert_int_eq(sigv4_hex_equal(NULL, GOOD_SIG), 0);
    ck_assert_int_eq(sigv4_hex_equal(GOOD_SIG, NULL), 0);
}
END_TEST

static Suite *sigv4_suite(void)
{
    Suite *s = suite_create("sigv4");
    TCase *tc = tcase_create("core");
    tcase_add_loop_test(tc, test_known_answer_canonical_request_and_signature, 0,
                        (int)(sizeof(vectors) / sizeof(vectors[0])));
    tcase_add_test(tc, test_get_vanilla_canonical_request_text);
    tcase_add_test(tc, test_signing_key_iam_known_answer);
    tcase_add_test(tc, test_sha256_hex_of_putevents_body_and_empty);
    tcase_add_test(tc, test_amz_date_formats_utc);
    tcase_add_loop_test(tc, test_header_value_is_trimmed_and_folded, 0,
                        (int)(sizeof(value_cases) / sizeof(value_cases[0])));
    tcase_add_test(tc, test_header_name_case_and_order_do_not_change_signature);
    tcase_add_loop_test(tc, test_duplicate_header_is_rejected_with_its_name, 0,
                        (int)(sizeof(duplicate_cases) / sizeof(duplicate_cases[0])));
    tcase_add_test(tc, test_invalid_header_inputs_are_rejected);
    tcase_add_test(tc, test_canonical_request_respects_output_limit);
    tcase_add_test(tc, test_signature_rejects_bad_scope_key_and_missing_headers);
    tcase_add_test(tc, test_changing_one_body_or_secret_byte_changes_signature);
    tcase_add_test(tc, test_authorization_header_format);
    tcase_add_loop_test(tc, test_parse_authorization_accepts_good_forms, 0,
                        (int)(sizeof(good_auth) / sizeof(good_auth[0])));
    tcase_add_loop_test(tc, test_parse_authorization_rejects_malformed_with_reason, 0,
                        (int)(sizeof(bad_auth) / sizeof(bad_auth[0])));
    tcase_add_test(tc, test_parse_authorization_rejects_overlong_fields);
    tcase_add_test(tc, test_hex_equal);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    return check_run_suite(sigv4_suite());
}
