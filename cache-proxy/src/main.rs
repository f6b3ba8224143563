//! `cache-proxy [--config FILE] [--NAME VALUE]...`, e.g.
//! `cache-proxy --port 7000 --node 127.0.0.1:7001 --node 127.0.0.1:7002`.

type Result<T> = std::result::Result<T, Box<dyn std::error::Error + Send + Sync>>;

use cache_proxy::{Config, Proxy};

fn usage() -> String {
    format!(
        "cache-proxy: a consistent-hashing RESP proxy for cache-nodes and Redis servers\n\n\
         Usage: cache-proxy [--config FILE] [--NAME VALUE]...\n\n\
         Options:\n  --config FILE                  TOML file of NAME = VALUE parameters (node = [\"h:p\", ...]); the command line adds to it\n  --help                         this text\n  --version                      print the version\n\n\
         Parameters:\n{}",
        Config::help()
    )
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut pairs = Vec::new();
    let mut file_pairs = Vec::new();
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "--help" | "-h" => {
                print!("{}", usage());
                return Ok(());
            }
            "--version" | "-v" => {
                println!("cache-proxy {}", env!("CARGO_PKG_VERSION"));
                return Ok(());
            }
            arg => {
                let Some(name) = arg.strip_prefix("--") else {
                    return Err(format!("expected --NAME VALUE, got '{arg}'").into());
                };
                let value = args
                    .get(i + 1)
                    .ok_or_else(|| format!("--{name} needs a value"))?;
                if name == "config" {
                    file_pairs = cache_net::load_toml_pairs(value)?;
                } else {
                    pairs.push((name.to_string(), value.clone()));
                }
                i += 2;
            }
        }
    }
    // The file first, so the command line wins (and adds nodes).
    file_pairs.extend(pairs);
    let config = Config::from_pairs(&file_pairs)?;
    cache_net::init_logging(&config.loglevel);
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
