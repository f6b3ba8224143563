//! `cache-node [--config FILE] [--NAME VALUE]...`: every parameter of CONFIG GET can be given
//! on the command line, as redis-server accepts them, or in a TOML file with the same names.

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

use cache_node::{Config, Node};

fn usage() -> String {
    format!(
        "cache-node: a Redis-compatible cache server\n\n\
         Usage: cache-node [--config FILE] [--NAME VALUE]...\n\
         \x20      cache-node install-change-feed --backing-url postgres://... [--backing-table T] [--backing-map M]\n\n\
         Options:\n  --config FILE                  TOML file of NAME = VALUE parameters (the command line wins)\n  --help                         this text\n  --version                      print the version\n\n\
         Parameters (also settable in the file; mutable ones with CONFIG SET):\n{}",
        Config::help()
    )
}

/// The config file named with `--config`, and the `--NAME VALUE` pairs in order.
struct CommandLine {
    config_file: Option<String>,
    params: Vec<(String, String)>,
}

/// Splits the command line into an optional config file and `(name, value)` pairs.
fn parse_args(args: &[String]) -> Result<CommandLine> {
    let matches = clap::Command::new("cache-node")
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(clap::Arg::new("config").long("config").num_args(1))
        .arg(
            clap::Arg::new("help")
                .long("help")
                .short('h')
                .action(clap::ArgAction::SetTrue),
        )
        .arg(
            clap::Arg::new("version")
                .long("version")
                .short('v')
                .action(clap::ArgAction::SetTrue),
        )
        .arg(
            clap::Arg::new("params")
                .num_args(0..)
                .trailing_var_arg(true)
                .allow_hyphen_values(true),
        )
        .try_get_matches_from(args)?;
    if matches.get_flag("help") {
        print!("{}", usage());
        std::process::exit(0);
    }
    if matches.get_flag("version") {
        println!("cache-node {}", env!("CARGO_PKG_VERSION"));
        std::process::exit(0);
    }
    let mut config = matches.get_one::<String>("config").cloned();
    let rest: Vec<String> = matches
        .get_many::<String>("params")
        .map(|v| v.cloned().collect())
        .unwrap_or_default();
    let mut pairs = Vec::new();
    let mut i = 0;
    while i < rest.len() {
        let Some(name) = rest[i].strip_prefix("--") else {
            return Err(format!("expected --NAME VALUE, got '{}'", rest[i]).into());
        };
        // `--save ""` and friends: a value may be empty; a missing one is an error.
        let value = rest
            .get(i + 1)
            .ok_or_else(|| format!("--{name} needs a value"))?;
        // clap only sees `--config` before the first `--NAME VALUE`; after one it lands here.
        // Accept it anywhere (`cache-node --port 7001 --config node.toml`) instead of failing
        // with "unknown parameter 'config'"; the file still applies before every pair.
        if name == "config" {
            if config.is_some() {
                return Err("--config given more than once".into());
            }
            config = Some(value.clone());
            i += 2;
            continue;
        }
        pairs.push((name.to_string(), value.clone()));
        i += 2;
    }
    Ok(CommandLine {
        config_file: config,
        params: pairs,
    })
}

/// `cache-node install-change-feed --backing-url postgres://... [--backing-table T]
/// [--backing-map M]`: installs the triggers that feed `backing-change-feed`.
fn install_change_feed(args: &[String]) -> Result<()> {
    let CommandLine {
        config_file,
        params,
    } = parse_args(args)?;
    let config = Config::default();
    if let Some(path) = &config_file {
        for (name, value) in cache_net::load_toml_pairs(path)? {
            config.set_initial(&name, &value)?;
        }
    }
    for (name, value) in &params {
        config
            .set_initial(name, value)
            .map_err(|e| format!("--{name}: {e}"))?;
    }
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

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("install-change-feed") {
        let rest: Vec<String> = std::iter::once(args[0].clone())
            .chain(args[2..].iter().cloned())
            .collect();
        return install_change_feed(&rest);
    }
    let CommandLine {
        config_file,
        params: pairs,
    } = parse_args(&args)?;
    let config = Config::default();
    if let Some(path) = &config_file {
        for (name, value) in cache_net::load_toml_pairs(path)? {
            config
                .set_initial(&name, &value)
                .map_err(|e| format!("{path}: {name}: {e}"))?;
        }
    }
    for (name, value) in &pairs {
        config
            .set_initial(name, value)
            .map_err(|e| format!("--{name}: {e}"))?;
    }
    cache_net::init_logging(&config.get("loglevel").unwrap_or_default());
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
        Ok(())
    })
}
