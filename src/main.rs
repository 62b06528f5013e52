//! The `picaboot` binary: parse, dispatch, print errors, exit with the contract's code.

use clap::Parser;

fn main() {
    let cli = picaboot::cli::Cli::parse();
    let json = cli.json();
    picaboot::progress::init(cli.quiet || json);
    let level = match cli.verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or(level))
        .format_timestamp(None)
        .init();
    if let Err(err) = picaboot::cli::run(cli) {
        let code = picaboot::cli::exit_code(&err);
        if json {
            picaboot::cli::json::print_error(&err, code);
        } else {
            picaboot::cli::print_error(&err);
        }
        std::process::exit(code);
    }
}
