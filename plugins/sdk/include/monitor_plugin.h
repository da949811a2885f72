/*
 * monitor_plugin.h: the C ABI of monitor-host plugins.
 *
 * The only definition of this ABI is the Rust module `monitor_plugin::abi` (plugins/sdk/src/abi.rs); this header
 * describes the same layout for plugins written in C, and a test keeps the two in sync.
 *
 * A plugin library exports two symbols:
 *
 *   uint32_t monitor_plugin_abi_version(void);                 -- returns MONITOR_PLUGIN_ABI_VERSION
 *   const MonitorPluginDeclaration *monitor_plugin_declare(void);
 *
 * The host calls the first before anything else and refuses the library if the number differs
 * from its own. The declaration lists the library's plugins; each plugin is a table of functions.
 * Every payload is UTF-8 JSON (see the README for its fields). A buffer handed to the other side
 * carries the function that frees it: the host calls `release(ptr, len)` exactly once on every
 * buffer a plugin returns, so each side only ever frees what its own allocator made.
 *
 * Rules: functions never unwind or longjmp across the boundary; anything but MONITOR_STATUS_OK
 * comes with a UTF-8 message in `*out`. The host calls one instance from one thread at a time (not
 * always the same thread over the instance's life). Strings in the declaration and the tables must
 * stay valid while the library is loaded (the host never unloads it).
 *
 * Versioning: MONITOR_PLUGIN_ABI_VERSION changes when a field is removed, reordered or retyped, a
 * signature changes, a status or kind is renumbered, or a JSON field is removed or changes meaning.
 * Fields appended at the end of a table that starts with `size` and new optional JSON fields keep it.
 * The host reads no field at or beyond a table's `size` bytes, so a table built with an older copy
 * of this header (a smaller `size`) still loads: the fields it lacks count as NULL.
 *
 * Appended to ABI version 1 (no bump):
 *   - MonitorPluginVTable.create_with_host and MonitorHost: the host hands an instance a table of
 *     its own functions; MonitorHost.request_collection lets a collector ask to be collected now
 *     (e.g. when a watched process exits). A plugin without it (NULL, or a table whose `size` ends
 *     before it) is created with `create` and collected on its schedule, as before.
 */
#ifndef MONITOR_PLUGIN_H
#define MONITOR_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MONITOR_PLUGIN_ABI_VERSION 1u
#define MONITOR_PLUGIN_VERSION_SYMBOL "monitor_plugin_abi_version"
#define MONITOR_PLUGIN_ENTRY_SYMBOL "monitor_plugin_declare"

/* Status codes returned by every entry point (uint32_t). */
#define MONITOR_STATUS_OK 0u
#define MONITOR_STATUS_ERROR 1u
#define MONITOR_STATUS_PANICKED 2u
#define MONITOR_STATUS_INCOMPATIBLE 3u

/* Plugin kinds (uint32_t): what `call` receives and returns.
 *   COLLECTOR: input empty;                  output {"samples": [...], "events": [...]}
 *   STRATEGY:  input a failure object;        output {"success": bool, "message": str, "duration_ms": n}
 *   NOTIFIER:  input a notification object;   output ignored (may be empty)
 *
 * A sample's "value" is a JSON number when finite. NaN and the infinities, which JSON numbers
 * cannot express, are the strings "NaN", "+Inf" and "-Inf" (as in Prometheus's text format; "Inf"
 * and any letter case are read too): {"name": "gc.pause", "value": "NaN"}. The host keeps them as
 * values. A sample the host cannot use (a null or other non-number value, a name outside
 * [A-Za-z0-9_:.-], a label name outside [A-Za-z_][A-Za-z0-9_]* or starting with "__", a
 * "timestamp_ms" more than [host] max_future_skew ahead of the host's clock) is dropped alone and
 * counted in monitor_host_samples_rejected_total{collector,reason}; the rest of the collection is
 * kept. */
#define MONITOR_KIND_COLLECTOR 0u
#define MONITOR_KIND_STRATEGY 1u
#define MONITOR_KIND_NOTIFIER 2u

/* A borrowed UTF-8 string; no terminator required. */
typedef struct MonitorStr {
    const uint8_t *ptr;
    size_t len;
} MonitorStr;

/* Frees a buffer; supplied by whoever allocated it. */
typedef void (*MonitorReleaseFn)(uint8_t *ptr, size_t len);

/* A buffer handed across, with its release function (NULL when there is nothing to free). */
typedef struct MonitorBuffer {
    uint8_t *ptr;
    size_t len;
    MonitorReleaseFn release;
} MonitorBuffer;

/* Creates a configured instance from the JSON config (`{}` when none); sets *instance on OK. */
typedef uint32_t (*MonitorCreateFn)(const uint8_t *config, size_t config_len, void **instance,
                                    MonitorBuffer *out);
/* Collect, heal or notify, by kind: JSON in, JSON out. */
typedef uint32_t (*MonitorCallFn)(void *instance, const uint8_t *input, size_t input_len,
                                  MonitorBuffer *out);
/* Releases the instance's resources; called once before destroy at shutdown. */
typedef uint32_t (*MonitorShutdownFn)(void *instance, MonitorBuffer *out);
/* Frees the instance. */
typedef void (*MonitorDestroyFn)(void *instance);

/* Asks the host to collect the instance now (see MonitorHost). */
typedef void (*MonitorRequestCollectionFn)(void *context);

/* What the host offers an instance. `size` = sizeof(MonitorHost) as the host built it; fields are
 * only ever appended: read none at or beyond `size` bytes.
 *
 * The table and its context stay valid from `create_with_host` until `destroy` returns for the
 * instance (when `create_with_host` fails: until it returns). Stop using them by then, on every
 * thread of the plugin.
 *
 * request_collection(context): asks the host to call the instance's `call` (a collection) as soon
 * as it can, out of its schedule, and to evaluate the alert rules over the result at once. Safe to
 * call from any thread at any time (also during `call`); never blocks. Requests made before the
 * collection starts are coalesced into one; the host rate-limits them (one collection per 50 ms at
 * most). Collectors only; for other kinds it does nothing. May be NULL. */
typedef struct MonitorHost {
    uint32_t size;
    void *context;
    MonitorRequestCollectionFn request_collection;
} MonitorHost;

/* Like MonitorCreateFn, given the host's table (kept by pointer, valid until destroy). */
typedef uint32_t (*MonitorCreateWithHostFn)(const uint8_t *config, size_t config_len,
                                            const MonitorHost *host, void **instance,
                                            MonitorBuffer *out);

/* The `size` of a MonitorPluginVTable before `create_with_host` was appended: the smallest table
 * the host accepts. */
#define MONITOR_PLUGIN_VTABLE_V1_SIZE offsetof(MonitorPluginVTable, create_with_host)

/* One plugin. `size` = sizeof(MonitorPluginVTable); fields are only ever appended.
 * create_with_host (appended, may be NULL): when set and within `size`, the host creates instances
 * with it instead of `create`. */
typedef struct MonitorPluginVTable {
    uint32_t size;
    uint32_t kind;
    MonitorStr name;
    MonitorStr version;
    MonitorCreateFn create;
    MonitorCallFn call;
    MonitorShutdownFn shutdown;
    MonitorDestroyFn destroy;
    MonitorCreateWithHostFn create_with_host;
} MonitorPluginVTable;

/* What a library declares. `size` = sizeof(MonitorPluginDeclaration). */
typedef struct MonitorPluginDeclaration {
    uint32_t size;
    uint32_t abi_version;
    MonitorStr sdk_version;
    const MonitorPluginVTable *const *plugins;
    size_t plugin_count;
} MonitorPluginDeclaration;

/* Helper for string literals: MONITOR_STR("name"). */
#define MONITOR_STR(s) { (const uint8_t *)(s), sizeof(s) - 1 }

#ifdef __cplusplus
}
#endif

#endif /* MONITOR_PLUGIN_H */
