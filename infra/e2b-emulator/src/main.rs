//! `e2b-emulator [--port N]`: serves the emulator until Ctrl-C or SIGTERM.

use e2b_emulator::{Emulator, EmulatorConfig};
use tracing_subscriber::EnvFilter;

const USAGE: &str = "usage: e2b-emulator [--port N]

Environment (all optional):
  E2B_EMULATOR_PORT                    port to bind on 127.0.0.1 (0 = any free port)
  E2B_EMULATOR_API_KEY                 API key of the single default team (team-local)
  E2B_EMULATOR_TEAMS                   teams as team_id:api_key,team_id:api_key
  E2B_EMULATOR_WEBHOOK_RETRY_DELAY_MS  delay between webhook retries (10000)
  E2B_EMULATOR_WEBHOOK_MAX_RETRIES     retries after the first attempt (3)
  E2B_EMULATOR_WEBHOOK_TIMEOUT_MS      per-attempt timeout (10000)
  E2B_EMULATOR_PAUSED_RETENTION_SECS   delete paused sandboxes after this long (kept)
  E2B_EMULATOR_SWEEP_INTERVAL_MS       expiry check interval (250)
  E2B_EMULATOR_PAUSE_DURATION_MS       how long a pause stays mid-transition (0)
  E2B_EMULATOR_SNAPSHOT_DURATION_MS    how long a snapshot stays mid-transition (50)
  RUST_LOG                             log filter (info)

Prints its base URL on stdout once listening.";

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("e2b-emulator: {message}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result<(), String> {
    let mut config = EmulatorConfig::from_env().map_err(|err| err.to_string())?;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                let value = args.next().ok_or("--port needs a value")?;
                config.port = value.parse().map_err(|_| format!("invalid port {value:?}"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    let emulator = Emulator::start(config)
        .await
        .map_err(|err| format!("cannot start: {err}"))?;
    println!("{}", emulator.base_url());
    wait_for_stop_signal().await;
    tracing::info!("stopping");
    emulator.shutdown().await;
    tracing::info!("stopped");
    Ok(())
}

async fn wait_for_stop_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
