//! `monitor-host`: the monitoring host binary (placeholder until the engine lands).

fn main() {
    eprintln!("monitor-host: the plugin host is not built yet; see README.md");
    std::process::exit(2);
}
