use std::process::ExitCode;

fn main() -> ExitCode {
    gpen_studio::cli::main()
}
