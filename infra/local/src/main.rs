//! `sandman-local`: run the whole stack locally (`dev`), walk through the lifecycle (`demo`), or
//! register a deployed webhook URL with E2B (`register-webhook --url URL`, `unregister-webhook`), or
//! smoke-test a stack through its API (`smoke --api-url URL`).

use std::process::ExitCode;

mod cli;

#[tokio::main]
async fn main() -> ExitCode {
    sandman::telemetry::init("sandman-local");
    let args: Vec<String> = std::env::args().skip(1).collect();
    match cli::run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("sandman-local: {message}");
            ExitCode::FAILURE
        }
    }
}
