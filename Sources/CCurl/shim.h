// libcurl (Debian libcurl4-openssl-dev). curl_easy_setopt and curl_easy_getinfo are variadic, which
// Swift cannot call; these wrappers fix the argument type per use.
#include <curl/curl.h>

typedef size_t (*anvil_curl_data_callback)(char *data, size_t size, size_t count, void *context);
typedef int (*anvil_curl_progress_callback)(void *context, curl_off_t downloadTotal, curl_off_t downloadNow,
                                            curl_off_t uploadTotal, curl_off_t uploadNow);

static inline CURLcode anvil_curl_set_long(CURL *handle, CURLoption option, long value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode anvil_curl_set_offset(CURL *handle, CURLoption option, curl_off_t value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode anvil_curl_set_string(CURL *handle, CURLoption option, const char *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode anvil_curl_set_pointer(CURL *handle, CURLoption option, void *value) {
    return curl_easy_setopt(handle, option, value);
}
static inline CURLcode anvil_curl_set_data_callback(CURL *handle, CURLoption option, anvil_curl_data_callback callback) {
    return curl_easy_setopt(handle, option, callback);
}
static inline CURLcode anvil_curl_set_progress_callback(CURL *handle, anvil_curl_progress_callback callback) {
    return curl_easy_setopt(handle, CURLOPT_XFERINFOFUNCTION, callback);
}
static inline CURLcode anvil_curl_get_long(CURL *handle, CURLINFO info, long *value) {
    return curl_easy_getinfo(handle, info, value);
}
static inline CURLcode anvil_curl_get_offset(CURL *handle, CURLINFO info, curl_off_t *value) {
    return curl_easy_getinfo(handle, info, value);
}
