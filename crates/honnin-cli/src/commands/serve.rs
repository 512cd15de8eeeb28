//! `honnin serve` and `honnin keys …`.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use honnin_core::crypto::load_master_key;
use honnin_core::{keys, Principal, Role, Service};
use honnin_server::{AppState, ServerConfig};
use honnin_storage::{RedactedUrl, Store};

use crate::EngineArgs;

/// Where the server keeps its data; shared by `serve` and `keys`.
#[derive(Args, Debug, Clone)]
pub struct LocationArgs {
    /// TOML configuration file (every field is optional; see docs/configuration.md).
    #[arg(long, env = "HONNIN_CONFIG")]
    pub config: Option<PathBuf>,
    /// Folder for the SQLite database and the master key [default: ./honnin-data].
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Database URL, e.g. postgres://user@host/db [default: SQLite in the data folder].
    #[arg(long)]
    pub database: Option<String>,
}

#[derive(Args, Debug)]
pub struct ServeArgs {
    #[command(flatten)]
    pub location: LocationArgs,
    /// Address to listen on [default: 127.0.0.1:8080]; port 0 picks a free port.
    #[arg(long)]
    pub listen: Option<std::net::SocketAddr>,
}

#[derive(Subcommand, Debug)]
pub enum KeysCommand {
    /// Create an API key and print its token (shown once).
    Create {
        #[command(flatten)]
        location: LocationArgs,
        /// admin, enroller or recognizer.
        #[arg(long)]
        role: String,
        /// Limit the key to one collection.
        #[arg(long)]
        collection: Option<String>,
        /// A label for people.
        #[arg(long, default_value = "")]
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their secrets).
    List {
        #[command(flatten)]
        location: LocationArgs,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key by its id.
    Revoke {
        #[command(flatten)]
        location: LocationArgs,
        key_id: String,
    },
}

fn load_config(loc: &LocationArgs) -> Result<ServerConfig> {
    let mut cfg = ServerConfig::load(loc.config.as_deref()).context("reading the configuration")?;
    if let Some(d) = &loc.data_dir {
        cfg.data_dir = d.clone();
    }
    if let Some(db) = &loc.database {
        cfg.database = db.clone();
    }
    Ok(cfg)
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

fn make_private_dir(dir: &std::path::Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

async fn open_store(cfg: &ServerConfig) -> Result<Store> {
    if cfg.database.is_empty() {
        make_private_dir(&cfg.data_dir)?;
    }
    let url = cfg.database_url();
    let vault = (!cfg.key_store.is_empty()).then_some(cfg.key_store.as_str());
    Store::open_with_vault(&url, vault).await.with_context(|| {
        format!(
            "opening the database {} (key vault: {})",
            RedactedUrl::new(url.clone()),
            vault.map_or("default".to_string(), |v| RedactedUrl::new(v).to_string())
        )
    })
}

/// Prints a line on stdout; a closed stdout (`honnin serve | head -1`) is not an error
/// for a server, which goes on serving.
fn say(line: impl std::fmt::Display) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|_| out.flush());
}

pub fn serve(engine_args: &EngineArgs, args: ServeArgs) -> Result<()> {
    let mut cfg = load_config(&args.location)?;
    if let Some(l) = args.listen {
        cfg.listen = l;
    }
    let mut engine_args = engine_args.clone();
    if engine_args.model_dir.is_none() && !cfg.model_dir.is_empty() {
        engine_args.model_dir = Some(PathBuf::from(&cfg.model_dir));
    }
    let engine = Arc::new(crate::common::engine(&engine_args, true)?);
    runtime()?.block_on(async move {
        let store = open_store(&cfg).await?;
        if cfg.database.is_empty() {
            make_private_dir(&cfg.data_dir)?;
        }
        let key_path = cfg.master_key_path();
        let (master, created) =
            load_master_key(&key_path, true).context("loading the master key")?;
        if created {
            eprintln!(
                "created master key {} (mode 0600): back it up; without it the data is unreadable",
                key_path.display()
            );
        }
        let service = Service::open(cfg.service.clone(), engine, store.clone(), master)
            .await
            .context("opening the service")?;
        if !keys::any(&store).await? {
            let k = keys::create(
                &store,
                &Principal::system(),
                Role::Admin,
                None,
                "initial admin",
            )
            .await?;
            say(format!(
                "admin API key (shown once, store it now): {}",
                k.token
            ));
        }
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("listening on {}", cfg.listen))?;
        let addr = listener.local_addr()?;
        let state = AppState::new(service, cfg);
        honnin_server::spawn_background(&state);
        say(format!(
            "honnin listening on http://{addr} (database: {:?})",
            state.service.store().backend()
        ));
        honnin_server::serve(listener, state, shutdown_signal())
            .await
            .context("serving")?;
        eprintln!("honnin stopped");
        Ok(())
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

pub fn keys(cmd: KeysCommand) -> Result<()> {
    runtime()?.block_on(async move {
        let system = Principal::system();
        match cmd {
            KeysCommand::Create {
                location,
                role,
                collection,
                name,
                json,
            } => {
                let role = Role::parse(&role).ok_or_else(|| {
                    anyhow::anyhow!("unknown role `{role}` (admin, enroller, recognizer)")
                })?;
                let store = open_store(&load_config(&location)?).await?;
                let k = keys::create(&store, &system, role, collection, &name).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&k)?);
                } else {
                    println!("{}", k.token);
                    eprintln!(
                        "created {} key {}{} — the token above is shown once",
                        k.role.as_str(),
                        k.key_id,
                        k.collection
                            .as_deref()
                            .map(|c| format!(" limited to collection {c}"))
                            .unwrap_or_default()
                    );
                }
            }
            KeysCommand::List { location, json } => {
                let store = open_store(&load_config(&location)?).await?;
                let list = keys::list(&store, &system).await?;
                if json {
                    println!("{}", serde_json::to_string_pretty(&list)?);
                } else {
                    println!(
                        "{:<18} {:<11} {:<20} {:<26} {:<10} name",
                        "key id", "role", "collection", "created", "state"
                    );
                    // Names are printable text since validation; older rows may hold
                    // anything, so escape on output: no terminal escape reaches the screen.
                    let esc = honnin_core::validate::escape_unprintable;
                    for k in list {
                        println!(
                            "{:<18} {:<11} {:<20} {:<26} {:<10} {}",
                            k.key_id,
                            k.role.as_str(),
                            esc(k.collection.as_deref().unwrap_or("(all)")),
                            k.created_at,
                            if k.revoked_at.is_some() {
                                "revoked"
                            } else {
                                "active"
                            },
                            esc(&k.name)
                        );
                    }
                }
            }
            KeysCommand::Revoke { location, key_id } => {
                let store = open_store(&load_config(&location)?).await?;
                let r = keys::revoke(&store, &system, &key_id).await?;
                eprintln!(
                    "revoked key {key_id}; servers refuse it within 2 s. Ended its work: {} liveness sessions and {} verifications cancelled, {} webhooks disabled ({} pending deliveries dropped), {} transient faces deleted",
                    r.sessions_cancelled,
                    r.verifications_cancelled,
                    r.webhooks_disabled,
                    r.deliveries_failed,
                    r.transient_deleted
                );
            }
        }
        Ok(())
    })
}
