/* A plugin library written in C against monitor_plugin.h: a collector that counts its calls and
 * one that returns bytes that are not JSON. Built and loaded by tests/tests/c_abi.rs.
 * Compile with -DTEST_ABI_VERSION=n to build a library of another ABI version. */
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

static const MonitorPluginVTable COUNTER = {
    sizeof(MonitorPluginVTable), MONITOR_KIND_COLLECTOR, MONITOR_STR("c-counter"), MONITOR_STR("1.0.0"),
    counter_create, counter_call, shutdown_, destroy,
};

static const MonitorPluginVTable GARBAGE = {
    sizeof(MonitorPluginVTable), MONITOR_KIND_COLLECTOR, MONITOR_STR("c-garbage"), MONITOR_STR("1.0.0"),
    counter_create, garbage_call, shutdown_, destroy,
};

static const MonitorPluginVTable *const PLUGINS[] = {&COUNTER, &GARBAGE};

static const MonitorPluginDeclaration DECLARATION = {
    sizeof(MonitorPluginDeclaration), TEST_ABI_VERSION, MONITOR_STR("c-header"), PLUGINS, 2,
};

uint32_t monitor_plugin_abi_version(void) { return TEST_ABI_VERSION; }

const MonitorPluginDeclaration *monitor_plugin_declare(void) { return &DECLARATION; }
