//! `fabric-remote completions SHELL`: the shell completion script for every command and flag,
//! generated from the clap definitions in [`crate::cli::args`] (so it never falls behind).
//!
//! Install (see `docs/install.md`):
//! bash `fabric-remote completions bash > ~/.local/share/bash-completion/completions/fabric-remote`,
//! zsh `fabric-remote completions zsh > "${fpath[1]}/_fabric-remote"`,
//! fish `fabric-remote completions fish > ~/.config/fish/completions/fabric-remote.fish`.

use std::io::Write;

use clap::CommandFactory;

use crate::cli::ExitStatus;
use crate::cli::args::{Cli, CompletionsArgs};

pub fn run(args: &CompletionsArgs) -> ExitStatus {
    let mut command = Cli::command();
    let name = command.get_name().to_string();
    // Into memory first: clap_complete panics on a write error, and `| head` is not an error.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, &name, &mut script);
    if args.shell == clap_complete::Shell::Bash {
        script = bash_hyphen_fix(&script, &name);
    }
    let _ = std::io::stdout().lock().write_all(&script);
    ExitStatus::Success
}

/// clap_complete's bash script spells a hyphenated binary's state two ways (`fabric__remote…`
/// while walking the words, `fabric__subcmd__remote…` in the `case` arms), so no subcommand's
/// flags ever complete (clap-rs/clap#6421, #6529, open). Spell the arms like the walk.
fn bash_hyphen_fix(script: &[u8], name: &str) -> Vec<u8> {
    let text = String::from_utf8_lossy(script);
    let walk = name.replace('-', "__");
    let arms = name.replace('-', "__subcmd__");
    if walk == arms {
        return script.to_vec();
    }
    text.replace(&arms, &walk).into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bash_arms_are_spelled_like_the_walk() {
        let script =
            b"cmd=\"fabric__remote__subcmd__run\"\n        fabric__subcmd__remote__subcmd__run)\n";
        let fixed = String::from_utf8(bash_hyphen_fix(script, "fabric-remote")).unwrap();
        assert_eq!(
            fixed,
            "cmd=\"fabric__remote__subcmd__run\"\n        fabric__remote__subcmd__run)\n"
        );
        assert_eq!(bash_hyphen_fix(b"x__subcmd__y", "plain"), b"x__subcmd__y");
    }
}
