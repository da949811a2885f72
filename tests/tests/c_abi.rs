//! The C side of the ABI: the shipped header matches the Rust definitions, a plugin written in C
//! loads and runs, and a library of another ABI version is refused.

use std::collections::HashMap;
use std::mem::{offset_of, size_of};
use std::process::Command;
use std::time::Duration;

use monitor_host::{Config, Engine, LoadError, PluginLibrary, render};
use monitor_plugin::abi::{self, Declaration, OwnedBuffer, PluginVTable, StrRef};
use monitor_tests::{Scratch, compile_c, toml_path};

#[test]
fn the_header_describes_the_rust_layout() {
    let dir = Scratch::new("layout");
    let exe = compile_c(&["tests/c/layout.c"], &dir.join("layout"), false, &[]);
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success());
    let c: HashMap<String, usize> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(' ').unwrap();
            (k.to_owned(), v.parse().unwrap())
        })
        .collect();
    let rust: HashMap<&str, usize> = HashMap::from([
        ("abi_version", abi::ABI_VERSION as usize),
        ("status_ok", abi::Status::Ok as usize),
        ("status_error", abi::Status::Error as usize),
        ("status_panicked", abi::Status::Panicked as usize),
        ("status_incompatible", abi::Status::Incompatible as usize),
        ("kind_collector", abi::PluginKind::Collector as usize),
        ("kind_strategy", abi::PluginKind::Strategy as usize),
        ("kind_notifier", abi::PluginKind::Notifier as usize),
        ("str.size", size_of::<StrRef>()),
        ("str.len", offset_of!(StrRef, len)),
        ("buffer.size", size_of::<OwnedBuffer>()),
        ("buffer.len", offset_of!(OwnedBuffer, len)),
        ("buffer.release", offset_of!(OwnedBuffer, release)),
        ("vtable.size", size_of::<PluginVTable>()),
        ("vtable.kind", offset_of!(PluginVTable, kind)),
        ("vtable.name", offset_of!(PluginVTable, name)),
        ("vtable.version", offset_of!(PluginVTable, version)),
        ("vtable.create", offset_of!(PluginVTable, create)),
        ("vtable.call", offset_of!(PluginVTable, call)),
        ("vtable.shutdown", offset_of!(PluginVTable, shutdown)),
        ("vtable.destroy", offset_of!(PluginVTable, destroy)),
        (
            "vtable.create_with_host",
            offset_of!(PluginVTable, create_with_host),
        ),
        ("vtable.v1_size", abi::PLUGIN_VTABLE_V1_SIZE),
        ("host.size", size_of::<abi::HostTable>()),
        ("host.context", offset_of!(abi::HostTable, context)),
        (
            "host.request_collection",
            offset_of!(abi::HostTable, request_collection),
        ),
        ("decl.size", size_of::<Declaration>()),
        ("decl.abi_version", offset_of!(Declaration, abi_version)),
        ("decl.sdk_version", offset_of!(Declaration, sdk_version)),
        ("decl.plugins", offset_of!(Declaration, plugins)),
        ("decl.plugin_count", offset_of!(Declaration, plugin_count)),
    ]);
    assert_eq!(c.len(), rust.len(), "every item is compared");
    for (k, v) in rust {
        assert_eq!(c[k], v, "{k}: header says {}, Rust says {v}", c[k]);
    }
    // The symbol names too.
    let header = std::fs::read_to_string(
        monitor_tests::workspace_root().join("plugins/sdk/include/monitor_plugin.h"),
    )
    .unwrap();
    for sym in [abi::VERSION_SYMBOL, abi::ENTRY_SYMBOL] {
        let name = std::str::from_utf8(&sym[..sym.len() - 1]).unwrap();
        assert!(
            header.contains(&format!("\"{name}\"")),
            "{name} in the header"
        );
    }
}

#[test]
fn a_plugin_written_in_c_loads_and_runs() {
    let dir = Scratch::new("c-plugin");
    let lib = compile_c(
        &["tests/c/c_plugin.c"],
        &dir.join("libc_plugin.so"),
        true,
        &[],
    );
    // SAFETY: built from this repository's test source.
    let loaded = unsafe { PluginLibrary::load(&lib) }.unwrap();
    assert_eq!(loaded.sdk_version, "c-header");
    let names: Vec<_> = loaded.plugins.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["c-counter", "c-garbage"]);

    let text = format!(
        r#"
[[collector]]
plugin = "c-counter"
library = {lib}
[collector.config]
step = 2.5

[[collector]]
plugin = "c-garbage"
library = {lib}
"#,
        lib = toml_path(&lib)
    );
    let config = Config::from_str(&text, "monitor.toml", dir.path()).unwrap();
    // SAFETY: as above.
    let mut e = unsafe { Engine::load(&config) }.unwrap();
    e.cycle(0);
    e.cycle(10_000);
    e.settle(Duration::from_secs(5));
    let metrics = render::prometheus(&e);
    assert!(
        metrics.contains("c_calls_total{collector=\"c-counter\",lang=\"c\"} 5"),
        "{metrics}"
    );
    let garbage = e
        .plugins()
        .into_iter()
        .find(|p| p.name == "c-garbage")
        .unwrap()
        .stats;
    assert!(garbage.errors >= 1);
    assert!(
        garbage
            .last_error
            .unwrap()
            .contains("not a valid collection")
    );
    let outcomes = e.shutdown();
    assert!(outcomes.iter().all(|o| o.result == "ok"), "{outcomes:?}");

    // Its own configure error is reported at the config table.
    let bad = text.replace("step = 2.5", "step = -1");
    let config = Config::from_str(&bad, "monitor.toml", dir.path()).unwrap();
    // SAFETY: as above.
    let err = unsafe { Engine::load(&config) }.unwrap_err().to_string();
    assert!(
        err.starts_with("monitor.toml:5:1: plugin `c-counter` refused its config"),
        "{err}"
    );
    assert!(err.contains("`step` must be positive"), "{err}");
}

/// A plugin built before `create_with_host` was appended to the table (ABI version 1, a `size`
/// that ends after `destroy`) loads and runs: the host reads nothing past `size`, where this test
/// library keeps a `create_with_host` that fails.
#[test]
fn a_table_of_the_first_layout_still_loads_and_runs() {
    let dir = Scratch::new("c-plugin-v1");
    let lib = compile_c(
        &["tests/c/c_plugin.c"],
        &dir.join("libc_plugin_v1.so"),
        true,
        &["-DTEST_V1_TABLE"],
    );
    // SAFETY: built from this repository's test source.
    let loaded = unsafe { PluginLibrary::load(&lib) }.unwrap();
    let counter = loaded
        .find(abi::PluginKind::Collector, "c-counter")
        .expect("the counter is declared");
    assert!(
        !counter.takes_host(),
        "nothing is read past the table's size"
    );
    let text = format!(
        "[[collector]]\nplugin = \"c-counter\"\nlibrary = {}\n",
        toml_path(&lib)
    );
    let config = Config::from_str(&text, "monitor.toml", dir.path()).unwrap();
    // SAFETY: as above.
    let mut e = unsafe { Engine::load(&config) }.unwrap_or_else(|e| panic!("{e}"));
    e.cycle(0);
    e.cycle(10_000);
    e.settle(Duration::from_secs(5));
    let metrics = render::prometheus(&e);
    assert!(
        metrics.contains("c_calls_total{collector=\"c-counter\",lang=\"c\"} 2"),
        "{metrics}"
    );
    let outcomes = e.shutdown();
    assert!(outcomes.iter().all(|o| o.result == "ok"), "{outcomes:?}");

    // Built with today's header and no `create_with_host` (null): the same.
    let current = compile_c(
        &["tests/c/c_plugin.c"],
        &dir.join("libc_plugin.so"),
        true,
        &[],
    );
    // SAFETY: as above.
    let loaded = unsafe { PluginLibrary::load(&current) }.unwrap();
    assert!(loaded.plugins.iter().all(|p| !p.takes_host()));
}

#[test]
fn a_library_of_another_abi_version_is_refused() {
    let dir = Scratch::new("abi");
    let lib = compile_c(
        &["tests/c/c_plugin.c"],
        &dir.join("libold.so"),
        true,
        &["-DTEST_ABI_VERSION=99u"],
    );
    // SAFETY: built from this repository's test source; the host must refuse it before calling
    // anything but the version symbol.
    let err = unsafe { PluginLibrary::load(&lib) }.unwrap_err();
    assert!(matches!(
        err,
        LoadError::AbiMismatch {
            found: 99,
            expected: abi::ABI_VERSION,
            ..
        }
    ));
    let text = err.to_string();
    assert!(
        text.contains("ABI version 99")
            && text.contains(&format!("ABI version {}", abi::ABI_VERSION)),
        "{text}"
    );

    let config = Config::from_str(
        &format!(
            "[[collector]]\nplugin = \"c-counter\"\nlibrary = {}\n",
            toml_path(&lib)
        ),
        "monitor.toml",
        dir.path(),
    )
    .unwrap();
    // SAFETY: as above.
    let err = unsafe { Engine::load(&config) }.unwrap_err().to_string();
    assert!(err.starts_with("monitor.toml:3:11: `library`: "), "{err}");
    assert!(err.contains("ABI version 99"), "{err}");
}

#[test]
fn unloadable_and_foreign_libraries_are_refused_with_their_location() {
    let dir = Scratch::new("unloadable");
    let garbage = dir.write("libgarbage.so", "this is not an ELF file");
    let foreign = compile_c(&["tests/c/layout.c"], &dir.join("libforeign.so"), true, &[]);
    let config = Config::from_str(
        &format!(
            "[[collector]]\nplugin = \"x\"\nlibrary = {}\n\n[[notifier]]\nplugin = \"y\"\nlibrary = {}\n",
            toml_path(&garbage),
            toml_path(&foreign)
        ),
        "monitor.toml",
        dir.path(),
    )
    .unwrap();
    // SAFETY: the test made both files; neither may be called into.
    let err = unsafe { Engine::load(&config) }.unwrap_err();
    assert_eq!(err.0.len(), 2, "{err}");
    assert!(
        err.0[0]
            .to_string()
            .starts_with("monitor.toml:3:11: `library`: cannot load library"),
        "{err}"
    );
    assert!(
        err.0[1]
            .to_string()
            .starts_with("monitor.toml:7:11: `library`: "),
        "{err}"
    );
    assert!(
        err.0[1].message.contains("is not a monitor plugin library"),
        "{err}"
    );
}

#[test]
fn the_loaders_reason_is_kept() {
    let dir = Scratch::new("loader-reason");
    let garbage = dir.write("libgarbage.so", &"this is not an ELF file. ".repeat(8));
    // A library that needs a function nobody defines: refused at load, not at its first call.
    let source = dir.write(
        "needs_missing.c",
        "extern int monitor_test_missing_function(void);\n\
         int needs_missing(void) { return monitor_test_missing_function(); }\n",
    );
    let needy = compile_c(
        &[source.to_str().unwrap()],
        &dir.join("libneedy.so"),
        true,
        &[],
    );
    for (lib, reason) in [
        (&garbage, "invalid ELF header"),
        (&needy, "undefined symbol: monitor_test_missing_function"),
    ] {
        // SAFETY: the test made both files; neither gets as far as running code.
        let err = unsafe { PluginLibrary::load(lib) }.unwrap_err();
        let text = err.to_string();
        assert!(
            text.starts_with(&format!("cannot load library `{}`: ", lib.display())),
            "{text}"
        );
        assert!(text.ends_with(reason), "{text}");
        assert!(matches!(err, LoadError::Open { .. }), "{err:?}");
    }
}

/// The dynamic symbols a library defines.
fn exported_symbols(library: &std::path::Path) -> Vec<String> {
    let out = Command::new("nm")
        .args(["-D", "--defined-only"])
        .arg(library)
        .output()
        .expect("`nm` (binutils) runs");
    assert!(out.status.success(), "nm failed on {}", library.display());
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().last().map(str::to_owned))
        .collect()
}

#[test]
fn only_export_plugin_makes_a_library_a_plugin_library() {
    monitor_tests::build();
    // Uses `#[monitor_performance]` and the SDK's types, but never calls `export_plugin!`.
    let plain = monitor_tests::library("monitor_test_not_a_plugin");
    let symbols = exported_symbols(&plain);
    assert!(
        symbols.iter().any(|s| s == "not_a_plugin_add"),
        "the library's own symbols are exported: {symbols:?}"
    );
    let leaked: Vec<&String> = symbols
        .iter()
        .filter(|s| s.starts_with("monitor_plugin_"))
        .collect();
    assert!(leaked.is_empty(), "plugin symbols leaked: {leaked:?}");
    // SAFETY: a library of this workspace; its initialisers are inventory registrations only.
    let err = unsafe { PluginLibrary::load(&plain) }.unwrap_err();
    assert!(matches!(err, LoadError::NotAPlugin(_)), "{err}");
    assert!(
        err.to_string().contains("is not a monitor plugin library"),
        "{err}"
    );

    // A real plugin library exports exactly the two entry symbols.
    let plugin = monitor_tests::library("monitor_plugin_log");
    let mut entry: Vec<String> = exported_symbols(&plugin)
        .into_iter()
        .filter(|s| s.starts_with("monitor_plugin_"))
        .collect();
    entry.sort();
    assert_eq!(
        entry,
        ["monitor_plugin_abi_version", "monitor_plugin_declare"]
    );
}
