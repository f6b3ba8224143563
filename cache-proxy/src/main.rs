//! `cache-proxy [FILE] [--NAME VALUE...]...`, e.g.
//! `cache-proxy --port 7000 --node 127.0.0.1:7001 --node 127.0.0.1:7002`.

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

use cache_config::CommandLine;
use cache_proxy::{Config, Proxy};

fn usage() -> String {
    format!(
        "cache-proxy: a consistent-hashing RESP proxy for cache-nodes and Redis servers\n\n\
         Usage: cache-proxy [FILE] [--NAME VALUE...]...\n\n\
         FILE is in redis.conf's format (`node 127.0.0.1:7001` lines) or, if it ends in .toml,\n\
         TOML (node = [\"h:p\", ...]); `--config FILE` names it too. The command line wins (and adds nodes).\n\
         Options:\n  --help                         this text\n  --version                      print the version\n\n\
         Parameters:\n{}",
        Config::help()
    )
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let line = CommandLine::parse(&args)?;
    if line.help {
        print!("{}", usage());
        return Ok(());
    }
    if line.version {
        println!("cache-proxy {}", env!("CARGO_PKG_VERSION"));
        return Ok(());
    }
    let config = match Config::from_command_line(&line) {
        Ok(config) => config,
        Err(e) => {
            // A human message (the file, line and directive for a bad one), not a Debug dump.
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    cache_net::init_logging_to(&config.loglevel, &config.logfile)
        .map_err(|e| format!("cannot open logfile {}: {e}", config.logfile))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let handle = Proxy::start(config).await?;
        tokio::spawn(cache_net::shutdown_on_signals(handle.shutdown.clone()));
        handle.wait().await;
        Ok(())
    })
}
