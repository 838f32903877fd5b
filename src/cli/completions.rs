//! Shell completions and the man page, generated from the clap definitions so they never drift
//! from the options; packaging/build-deb.sh writes them into the package.

use clap::{Args, ValueEnum};
use std::io::Write;
use std::process::ExitCode;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// bash, zsh or fish.
    #[arg(value_name = "SHELL")]
    pub shell: Shell,
}

/// The completion script for `shell`.
pub fn completions(shell: Shell) -> Vec<u8> {
    let mut cmd = super::command();
    let mut out = Vec::new();
    let name = cmd.get_name().to_string();
    match shell {
        Shell::Bash => clap_complete::generate(clap_complete::Shell::Bash, &mut cmd, name, &mut out),
        Shell::Zsh => clap_complete::generate(clap_complete::Shell::Zsh, &mut cmd, name, &mut out),
        Shell::Fish => clap_complete::generate(clap_complete::Shell::Fish, &mut cmd, name, &mut out),
    }
    out
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write gpen-studio.1 and a page for each command (gpen-studio-restore.1, ...) into DIR
    /// instead of printing gpen-studio.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<std::path::PathBuf>,
}

/// The man page gpen-studio(1), roff.
pub fn man_page() -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    clap_mangen::Man::new(super::command()).render(&mut out)?;
    Ok(out)
}

pub fn run_completions(args: CompletionsArgs) -> anyhow::Result<ExitCode> {
    std::io::stdout().lock().write_all(&completions(args.shell))?;
    Ok(ExitCode::SUCCESS)
}

pub fn run_man(args: ManArgs) -> anyhow::Result<ExitCode> {
    match args.dir {
        Some(dir) => {
            std::fs::create_dir_all(&dir)?;
            clap_mangen::generate_to(super::command(), &dir)?;
        }
        None => std::io::stdout().lock().write_all(&man_page()?)?,
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completions_and_the_man_page_know_every_command() {
        let names: Vec<String> =
            super::super::command().get_subcommands().filter(|c| !c.is_hide_set()).map(|c| c.get_name().to_string()).collect();
        assert!(names.iter().any(|n| n == "restore") && names.iter().any(|n| n == "info"), "{names:?}");
        for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
            let script = String::from_utf8(completions(shell)).unwrap();
            for n in &names {
                assert!(script.contains(n.as_str()), "{shell:?} completions lack {n}");
            }
            assert!(script.contains("--weights") || script.contains("weights"), "{shell:?}: options of subcommands");
        }
        let man = String::from_utf8(man_page().unwrap()).unwrap();
        assert!(man.contains(".TH gpen-studio 1 "), "{}", &man[..200.min(man.len())]);
        for n in &names {
            assert!(man.contains(n.as_str()), "the man page lacks {n}");
        }
        assert!(man.contains("130"), "the man page documents the exit statuses");
        // One page for each command too, as the top page refers to them.
        let dir = tempfile::tempdir().unwrap();
        run_man(ManArgs { dir: Some(dir.path().into()) }).unwrap();
        for page in ["gpen-studio.1", "gpen-studio-restore.1", "gpen-studio-bench-generator.1", "gpen-studio-info.1"] {
            let text = std::fs::read_to_string(dir.path().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
            assert!(text.contains(".TH "), "{page}");
        }
        let restore = std::fs::read_to_string(dir.path().join("gpen-studio-restore.1")).unwrap();
        assert!(restore.contains("memory\\-ratio") && restore.contains("130"), "options and exit statuses");
    }
}
