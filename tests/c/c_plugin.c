/* A plugin library written in C against monitor_plugin.h: a collector that counts its calls and
 * one that returns bytes that are not JSON. Built and loaded by tests/tests/c_abi.rs.
 * Compile with -DTEST_ABI_VERSION=n to build a library of another ABI version, and with
 * -DTEST_WITH_NOTIFIER to add a notifier (tests/tests/stale_resolution.rs), and with -DTEST_V1_TABLE
 * for tables as the first header laid them out (see below). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor_plugin.h"

#ifndef TEST_ABI_VERSION
#define TEST_ABI_VERSION MONITOR_PLUGIN_ABI_VERSION
#endif

typedef struct Counter {
    long calls;
    double step;
} Counter;

static void release(uint8_t *ptr, size_t len) {
    (void)len;
    free(ptr);
}

static uint32_t respond(MonitorBuffer *out, uint32_t status, const char *text) {
    size_t len = strlen(text);
    uint8_t *copy = malloc(len ? len : 1);
    if (copy == NULL) return MONITOR_STATUS_ERROR;
    memcpy(copy, text, len);
    out->ptr = copy;
    out->len = len;
    out->release = release;
    return status;
}

static uint32_t counter_create(const uint8_t *config, size_t len, void **instance, MonitorBuffer *out) {
    /* A real plugin would parse the JSON; this one looks for "step": <number>. */
    char buf[256] = {0};
    memcpy(buf, config, len < sizeof buf - 1 ? len : sizeof buf - 1);
    Counter *c = calloc(1, sizeof *c);
    if (c == NULL) return respond(out, MONITOR_STATUS_ERROR, "out of memory");
    c->step = 1.0;
    const char *step = strstr(buf, "\"step\":");
    if (step != NULL) c->step = atof(step + 7);
    if (c->step <= 0) {
        free(c);
        return respond(out, MONITOR_STATUS_ERROR, "`step` must be positive");
    }
    *instance = c;
    return MONITOR_STATUS_OK;
}

static uint32_t counter_call(void *instance, const uint8_t *input, size_t len, MonitorBuffer *out) {
    (void)input;
    (void)len;
    Counter *c = instance;
    c->calls++;
    char json[256];
    snprintf(json, sizeof json,
             "{\"samples\":[{\"name\":\"c.calls\",\"value\":%.1f,\"kind\":\"counter\","
             "\"labels\":{\"lang\":\"c\"}}],\"events\":[]}",
             (double)c->calls * c->step);
    return respond(out, MONITOR_STATUS_OK, json);
}

static uint32_t garbage_call(void *instance, const uint8_t *input, size_t len, MonitorBuffer *out) {
    (void)instance;
    (void)input;
    (void)len;
    return respond(out, MONITOR_STATUS_OK, "{\"samples\": [this is not json");
}

static uint32_t shutdown_(void *instance, MonitorBuffer *out) {
    (void)instance;
    (void)out;
    return MONITOR_STATUS_OK;
}

static void destroy(void *instance) { free(instance); }

#ifdef TEST_V1_TABLE
/* Tables whose `size` ends after `destroy`, as a plugin built with the header of before
 * `create_with_host` has them. The field past `size` holds a function the host must never call:
 * it lies outside the table. */
static uint32_t beyond_size(const uint8_t *config, size_t len, const MonitorHost *host, void **instance,
                            MonitorBuffer *out) {
    (void)config;
    (void)len;
    (void)host;
    (void)instance;
    return respond(out, MONITOR_STATUS_ERROR, "create_with_host called beyond the table's size");
}
#define TABLE_SIZE MONITOR_PLUGIN_VTABLE_V1_SIZE
#define CREATE_WITH_HOST beyond_size
#else
#define TABLE_SIZE sizeof(MonitorPluginVTable)
#define CREATE_WITH_HOST NULL
#endif

static const MonitorPluginVTable COUNTER = {
    TABLE_SIZE, MONITOR_KIND_COLLECTOR, MONITOR_STR("c-counter"), MONITOR_STR("1.0.0"),
    counter_create, counter_call, shutdown_, destroy, CREATE_WITH_HOST,
};

static const MonitorPluginVTable GARBAGE = {
    TABLE_SIZE, MONITOR_KIND_COLLECTOR, MONITOR_STR("c-garbage"), MONITOR_STR("1.0.0"),
    counter_create, garbage_call, shutdown_, destroy, CREATE_WITH_HOST,
};

#ifdef TEST_WITH_NOTIFIER
/* A notifier as a C consumer would write one: it reads "value" as a number with strtod and refuses
 * a payload where it is not one; it appends every payload it accepts, one per line, to the file
 * named by the config's "path". */
typedef struct Appender {
    char path[512];
} Appender;

static uint32_t appender_create(const uint8_t *config, size_t len, void **instance, MonitorBuffer *out) {
    char buf[1024] = {0};
    memcpy(buf, config, len < sizeof buf - 1 ? len : sizeof buf - 1);
    const char *start = strstr(buf, "\"path\":\"");
    if (start == NULL) return respond(out, MONITOR_STATUS_ERROR, "`path` is required");
    start += strlen("\"path\":\"");
    const char *end = strchr(start, '"');
    if (end == NULL || (size_t)(end - start) >= sizeof ((Appender *)0)->path)
        return respond(out, MONITOR_STATUS_ERROR, "`path` is too long");
    Appender *a = calloc(1, sizeof *a);
    if (a == NULL) return respond(out, MONITOR_STATUS_ERROR, "out of memory");
    memcpy(a->path, start, (size_t)(end - start));
    *instance = a;
    return MONITOR_STATUS_OK;
}

static uint32_t appender_call(void *instance, const uint8_t *input, size_t len, MonitorBuffer *out) {
    Appender *a = instance;
    char *text = malloc(len + 1);
    if (text == NULL) return respond(out, MONITOR_STATUS_ERROR, "out of memory");
    memcpy(text, input, len);
    text[len] = '\0';
    const char *value = strstr(text, "\"value\":");
    char *end = NULL;
    if (value != NULL) {
        value += strlen("\"value\":");
        strtod(value, &end);
    }
    if (value == NULL || end == value) {
        free(text);
        return respond(out, MONITOR_STATUS_ERROR, "`value` is not a number");
    }
    FILE *f = fopen(a->path, "a");
    if (f == NULL) {
        free(text);
        return respond(out, MONITOR_STATUS_ERROR, "cannot open `path` for appending");
    }
    fprintf(f, "%s\n", text);
    fclose(f);
    free(text);
    return MONITOR_STATUS_OK;
}

static const MonitorPluginVTable APPENDER = {
    TABLE_SIZE, MONITOR_KIND_NOTIFIER, MONITOR_STR("c-appender"), MONITOR_STR("1.0.0"),
    appender_create, appender_call, shutdown_, destroy, CREATE_WITH_HOST,
};

static const MonitorPluginVTable *const PLUGINS[] = {&COUNTER, &GARBAGE, &APPENDER};
#else
static const MonitorPluginVTable *const PLUGINS[] = {&COUNTER, &GARBAGE};
#endif

static const MonitorPluginDeclaration DECLARATION = {
    sizeof(MonitorPluginDeclaration), TEST_ABI_VERSION, MONITOR_STR("c-header"), PLUGINS,
    sizeof PLUGINS / sizeof PLUGINS[0],
};

uint32_t monitor_plugin_abi_version(void) { return TEST_ABI_VERSION; }

const MonitorPluginDeclaration *monitor_plugin_declare(void) { return &DECLARATION; }
