//! `cache-node [--config FILE] [--NAME VALUE]...`: every parameter of CONFIG GET can be given
//! on the command line, as redis-server accepts them, or in a TOML file with the same names.

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

use cache_node::{CommandLine, Config, Node};

fn usage() -> String {
    format!(
        "cache-node: a Redis-compatible cache server\n\n\
         Usage: cache-node [FILE] [--NAME VALUE...]...\n\
         \x20      cache-node install-change-feed --backing-url postgres://... [--backing-table T] [--backing-map M]\n\n\
         FILE is a redis.conf (Redis's own format; `include` works) or, if it ends in .toml, a\n\
         TOML file of NAME = VALUE; `--config FILE` names it too. The command line wins.\n\
         Options:\n  --help                         this text\n  --version                      print the version\n\n\
         Parameters (also settable in the file; mutable ones with CONFIG SET):\n{}",
        Config::help()
    )
}

/// The command line, or the usage/version text and exit.
fn command_line(args: &[String]) -> Result<CommandLine> {
    let line = CommandLine::parse(args.get(1..).unwrap_or_default())?;
    if line.help {
        print!("{}", usage());
        std::process::exit(0);
    }
    if line.version {
        println!("cache-node {}", env!("CARGO_PKG_VERSION"));
        std::process::exit(0);
    }
    Ok(line)
}

/// `cache-node install-change-feed --backing-url postgres://... [--backing-table T]
/// [--backing-map M]`: installs the triggers that feed `backing-change-feed`.
fn install_change_feed(args: &[String]) -> Result<()> {
    let config = Config::from_command_line(&command_line(args)?)?;
    let get = |name: &str| config.get(name).unwrap_or_default();
    let mappings = cache_backing::Mapping::parse_list(&get("backing-map"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let tables = runtime.block_on(cache_backing::feed::install(
        &get("backing-url"),
        &get("backing-table"),
        &mappings,
    ))?;
    println!(
        "change feed installed on {} (channel {})",
        tables.join(", "),
        cache_backing::feed::CHANNEL
    );
    Ok(())
}

/// `daemonize yes`: starts this program again, detached in a session of its own with
/// `--daemonize no` appended (the command line wins over the file), and exits. Its output
/// goes to `logfile`, or nowhere, as a daemonized redis-server's.
fn daemonize(args: &[String]) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let child = std::process::Command::new(std::env::current_exe()?)
        .args(&args[1..])
        .args(["--daemonize", "no"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()?;
    println!("cache-node daemonized as process {}", child.id());
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("install-change-feed") {
        let rest: Vec<String> = std::iter::once(args[0].clone())
            .chain(args[2..].iter().cloned())
            .collect();
        return install_change_feed(&rest);
    }
    let line = command_line(&args)?;
    let config = match Config::from_command_line(&line) {
        Ok(config) => config,
        Err(e) => {
            // A human message (redis-server's for a bad directive), not a Debug dump.
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let config_file = line.file.clone();
    if config.get("daemonize").as_deref() == Some("yes") {
        return daemonize(&args);
    }
    let get = |name: &str| config.get(name).unwrap_or_default();
    let logfile = get("logfile");
    cache_net::init_logging_to(&get("loglevel"), &logfile)
        .map_err(|e| format!("cannot open logfile {logfile}: {e}"))?;
    let quiet = config.no_effect_set();
    if !quiet.is_empty() {
        tracing::info!(
            "accepted, no effect here (Redis tuning this node does not need): {}",
            quiet.join(", ")
        );
    }
    let pidfile = get("pidfile");
    if !pidfile.is_empty() {
        std::fs::write(&pidfile, format!("{}\n", std::process::id()))
            .map_err(|e| format!("cannot write pidfile {pidfile}: {e}"))?;
    }
    // This runtime only accepts, runs the cron and waits for signals; connections live on
    // the node's worker threads.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let handle = Node::start(config, config_file).await?;
        tokio::spawn(cache_net::shutdown_on_signals(
            handle.shared.shutdown.clone(),
        ));
        handle.wait().await;
        if !pidfile.is_empty() {
            let _ = std::fs::remove_file(&pidfile);
        }
        Ok(())
    })
}
