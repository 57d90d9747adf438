/* A stand-in for the official WeCom archive SDK binary (libWeWorkFinanceSdk_C.so): the same
 * C ABI, with the WeCom service replaced by a folder. Our code loads it exactly as it loads
 * the official binary (archive.sdk_library), so the isolated SDK process, the ctypes binding
 * and the GetMediaData chunk loop all run for real; only the service is stood in for.
 *
 * GetMediaData serves the file STANDIN_SDK_MEDIA/<sdkfileid> in chunks of STANDIN_SDK_CHUNK
 * bytes (default 4096), the index buffer being "Range:<offset>"; an unknown sdkfileid is
 * return code 10005 (bad sdkfileid). Init refuses an empty corpid or secret (10000) and the
 * secret "wrong-secret" (10004, as a key error). GetChatData answers, from seq 0, the
 * response in the file STANDIN_SDK_CHAT (one page holding the whole archive), else an empty
 * page.
 * DecryptData is not stood in for (10000). Built by the tests with the system C compiler.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { char *buf; int len; } Slice_t;
typedef struct {
    char *outindexbuf; int out_len;
    char *data; int data_len;
    int is_finish;
} MediaData_t;
typedef struct { int initialised; } WeWorkFinanceSdk_t;

WeWorkFinanceSdk_t *NewSdk(void) { return calloc(1, sizeof(WeWorkFinanceSdk_t)); }
void DestroySdk(WeWorkFinanceSdk_t *sdk) { free(sdk); }

int Init(WeWorkFinanceSdk_t *sdk, const char *corpid, const char *secret) {
    if (!sdk || !corpid || !secret || !*corpid || !*secret) return 10000;
    if (strcmp(secret, "wrong-secret") == 0) return 10004;
    sdk->initialised = 1;
    return 0;
}

Slice_t *NewSlice(void) { return calloc(1, sizeof(Slice_t)); }
void FreeSlice(Slice_t *s) { if (s) { free(s->buf); free(s); } }
char *GetContentFromSlice(Slice_t *s) { return s->buf; }
int GetSliceLen(Slice_t *s) { return s->len; }

static void set_slice(Slice_t *s, const char *text) {
    free(s->buf);
    s->len = (int)strlen(text);
    s->buf = malloc(s->len + 1);
    memcpy(s->buf, text, s->len + 1);
}

int GetChatData(WeWorkFinanceSdk_t *sdk, unsigned long long seq, unsigned int limit,
                const char *proxy, const char *passwd, int timeout, Slice_t *chat) {
    (void)proxy; (void)passwd; (void)timeout;
    if (!sdk || !sdk->initialised || limit < 1 || limit > 1000) return 10000;
    const char *page = getenv("STANDIN_SDK_CHAT");
    FILE *f = seq == 0 && page ? fopen(page, "rb") : NULL;
    if (!f) {
        set_slice(chat, "{\"errcode\":0,\"errmsg\":\"ok\",\"chatdata\":[]}");
        return 0;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    free(chat->buf);
    chat->buf = malloc(size + 1);
    chat->len = (int)fread(chat->buf, 1, size, f);
    chat->buf[chat->len] = 0;
    fclose(f);
    return 0;
}

int DecryptData(const char *key, const char *msg, Slice_t *out) {
    (void)key; (void)msg; (void)out;
    return 10000;
}

MediaData_t *NewMediaData(void) { return calloc(1, sizeof(MediaData_t)); }
void FreeMediaData(MediaData_t *m) {
    if (m) { free(m->outindexbuf); free(m->data); free(m); }
}
char *GetOutIndexBuf(MediaData_t *m) { return m->outindexbuf; }
char *GetData(MediaData_t *m) { return m->data; }
int GetIndexLen(MediaData_t *m) { return m->out_len; }
int GetDataLen(MediaData_t *m) { return m->data_len; }
int IsMediaDataFinish(MediaData_t *m) { return m->is_finish; }

int GetMediaData(WeWorkFinanceSdk_t *sdk, const char *indexbuf, const char *sdkfileid,
                 const char *proxy, const char *passwd, int timeout, MediaData_t *media) {
    (void)proxy; (void)passwd; (void)timeout;
    if (!sdk || !sdk->initialised || !sdkfileid || !*sdkfileid) return 10000;
    if (strchr(sdkfileid, '/') || strstr(sdkfileid, "..")) return 10005;
    const char *dir = getenv("STANDIN_SDK_MEDIA");
    const char *chunk_env = getenv("STANDIN_SDK_CHUNK");
    long chunk = chunk_env ? atol(chunk_env) : 4096;
    if (!dir || chunk <= 0) return 10003;
    char path[4096];
    if (snprintf(path, sizeof path, "%s/%s", dir, sdkfileid) >= (int)sizeof path) return 10005;
    FILE *f = fopen(path, "rb");
    if (!f) return 10005;
    long offset = 0;
    if (indexbuf && strncmp(indexbuf, "Range:", 6) == 0) offset = atol(indexbuf + 6);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    if (offset < 0 || offset > size) { fclose(f); return 10000; }
    long n = size - offset < chunk ? size - offset : chunk;
    fseek(f, offset, SEEK_SET);
    free(media->data);
    media->data = malloc(n > 0 ? n : 1);
    media->data_len = (int)fread(media->data, 1, n, f);
    fclose(f);
    free(media->outindexbuf);
    media->outindexbuf = malloc(32);
    media->out_len = snprintf(media->outindexbuf, 32, "Range:%ld", offset + media->data_len);
    media->is_finish = offset + media->data_len >= size;
    return 0;
}
