//! The `picaboot` binary: parse, dispatch, print errors, exit with the contract's code.

use clap::Parser;

fn main() {
    let cli = match picaboot::cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            std::process::exit(picaboot::cli::clap_exit_code(&e));
        }
    };
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
    // A panic is a bug: say so, and exit with the bug code rather than Rust's 101.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        eprintln!("picaboot: internal error (a bug in picaboot, please report it):");
        default_hook(info);
    }));
    let result = std::panic::catch_unwind(|| picaboot::cli::run(cli));
    // After a SIGINT/SIGTERM, the signal handler's cleanup decides the exit (130/143).
    picaboot::cleanup::hold_if_interrupted();
    match result {
        Ok(Ok(())) => {}
        Ok(Err(err))
            if picaboot::cli::exit::classify(&err) == picaboot::cli::exit::Class::Quiet =>
        {
            // stdout was closed by its reader (`| head`): nothing to say, and no one to say it to.
            std::process::exit(0);
        }
        Ok(Err(err)) => {
            let code = picaboot::cli::exit_code(&err);
            if json {
                picaboot::cli::json::print_error(&err, code);
            } else {
                picaboot::cli::print_error(&err);
            }
            std::process::exit(code);
        }
        Err(_) => std::process::exit(picaboot::cli::exit::EXIT_BUG),
    }
}
