/* Prints the layout of monitor_plugin.h's types and constants, one `name value` per line, for
 * tests/tests/c_abi.rs to compare with the Rust definitions. */
#include <stddef.h>
#include <stdio.h>

#include "monitor_plugin.h"

#define P(name, value) printf("%s %zu\n", name, (size_t)(value))

int main(void) {
    P("abi_version", MONITOR_PLUGIN_ABI_VERSION);
    P("status_ok", MONITOR_STATUS_OK);
    P("status_error", MONITOR_STATUS_ERROR);
    P("status_panicked", MONITOR_STATUS_PANICKED);
    P("status_incompatible", MONITOR_STATUS_INCOMPATIBLE);
    P("kind_collector", MONITOR_KIND_COLLECTOR);
    P("kind_strategy", MONITOR_KIND_STRATEGY);
    P("kind_notifier", MONITOR_KIND_NOTIFIER);
    P("str.size", sizeof(MonitorStr));
    P("str.len", offsetof(MonitorStr, len));
    P("buffer.size", sizeof(MonitorBuffer));
    P("buffer.len", offsetof(MonitorBuffer, len));
    P("buffer.release", offsetof(MonitorBuffer, release));
    P("vtable.size", sizeof(MonitorPluginVTable));
    P("vtable.kind", offsetof(MonitorPluginVTable, kind));
    P("vtable.name", offsetof(MonitorPluginVTable, name));
    P("vtable.version", offsetof(MonitorPluginVTable, version));
    P("vtable.create", offsetof(MonitorPluginVTable, create));
    P("vtable.call", offsetof(MonitorPluginVTable, call));
    P("vtable.shutdown", offsetof(MonitorPluginVTable, shutdown));
    P("vtable.destroy", offsetof(MonitorPluginVTable, destroy));
    P("vtable.create_with_host", offsetof(MonitorPluginVTable, create_with_host));
    P("vtable.v1_size", MONITOR_PLUGIN_VTABLE_V1_SIZE);
    P("host.size", sizeof(MonitorHost));
    P("host.context", offsetof(MonitorHost, context));
    P("host.request_collection", offsetof(MonitorHost, request_collection));
    P("decl.size", sizeof(MonitorPluginDeclaration));
    P("decl.abi_version", offsetof(MonitorPluginDeclaration, abi_version));
    P("decl.sdk_version", offsetof(MonitorPluginDeclaration, sdk_version));
    P("decl.plugins", offsetof(MonitorPluginDeclaration, plugins));
    P("decl.plugin_count", offsetof(MonitorPluginDeclaration, plugin_count));
    return 0;
}
