//! The debconf question an installer is showing, from its syslog. With `DEBCONF_DEBUG=developer`
//! cdebconf logs every command a config script sends and its answer (`src/confmodule.c`:
//! `INFO(INFO_DEBUG, "--> %s")` for a command, `"<-- %s"` for the answer): `--> INPUT
//! critical passwd/root-password` then `<-- 0 question will be asked` (shown at the next `GO`)
//! or `<-- 30 question skipped` (answered by the preseed, or below the priority); `--> GO`
//! shows the questions to be asked since the last `GO` on one screen. The questions on screen
//! when an install stops are those of the last `GO` that had any.

/// Follows one installer's syslog for the questions it asks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Questions {
    pending: Option<String>,
    asked: Option<String>,
    batch: Vec<String>,
    on_screen: Vec<String>,
    last_input: Option<String>,
    inputs: usize,
}

/// The question of an `INPUT PRIORITY QUESTION` command line, if it is one.
pub fn input_of(line: &str) -> Option<String> {
    let i = line.find("--> INPUT ")?;
    let mut words = line[i + "--> INPUT ".len()..].split_whitespace();
    let _priority = words.next()?;
    let q = words.next()?;
    q.contains('/').then(|| q.to_string())
}

impl Questions {
    /// Takes one syslog line.
    pub fn line(&mut self, line: &str) {
        if let Some(q) = input_of(line) {
            self.inputs += 1;
            self.last_input = Some(q.clone());
            self.pending = Some(q);
            return;
        }
        if line.contains("--> GO") {
            if !self.batch.is_empty() {
                self.on_screen = std::mem::take(&mut self.batch);
            }
            return;
        }
        let Some(i) = line.find("<-- ") else { return };
        let Some(q) = self.pending.take() else { return };
        if line[i + 4..].trim_start().starts_with("0 ") {
            self.batch.push(q.clone());
            self.asked = Some(q);
        }
    }

    /// The questions of the last screen shown (`a, b`), else the last question that was to be
    /// shown, else the last one asked for at all.
    pub fn current(&self) -> Option<String> {
        if !self.on_screen.is_empty() {
            return Some(self.on_screen.join(", "));
        }
        self.asked.clone().or_else(|| self.last_input.clone())
    }

    /// The last question that was to be shown (answered `0 question will be asked`).
    pub fn shown(&self) -> Option<&str> {
        self.asked.as_deref()
    }

    /// How many `INPUT` commands were seen (0: the syslog carries no debconf debugging).
    pub fn inputs(&self) -> usize {
        self.inputs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_question_shown_is_the_last_one_not_skipped() {
        let mut q = Questions::default();
        for l in [
            "Dec  4 17:01:02 debconf: --> INPUT high passwd/make-user",
            "Dec  4 17:01:02 debconf: <-- 30 question skipped",
            "Dec  4 17:01:03 debconf: --> INPUT critical passwd/root-password",
            "Dec  4 17:01:03 debconf: <-- 0 question will be asked",
            "Dec  4 17:01:03 debconf: --> INPUT critical passwd/root-password-again",
            "Dec  4 17:01:03 debconf: <-- 0 question will be asked",
            "Dec  4 17:01:03 debconf: --> GO",
        ] {
            q.line(l);
        }
        assert_eq!(q.shown(), Some("passwd/root-password-again"));
        assert_eq!(
            q.current().as_deref(),
            Some("passwd/root-password, passwd/root-password-again"),
            "both are on the screen of that GO"
        );
        assert_eq!(q.inputs(), 3);
        q.line("debconf: --> INPUT critical partman/confirm");
        q.line("debconf: <-- 30 question skipped");
        q.line("debconf: --> GO");
        assert_eq!(
            q.current().as_deref(),
            Some("passwd/root-password, passwd/root-password-again"),
            "a GO with nothing to show leaves the screen as it was"
        );
    }

    #[test]
    fn skipped_questions_are_named_only_when_none_was_shown() {
        let mut q = Questions::default();
        q.line("debconf: --> INPUT low netcfg/get_hostname");
        q.line("debconf: <-- 30 question skipped");
        assert_eq!(q.shown(), None);
        assert_eq!(q.current().as_deref(), Some("netcfg/get_hostname"));
        assert_eq!(Questions::default().current(), None);
        assert_eq!(input_of("--> INPUT critical"), None);
        assert_eq!(input_of("kernel: INPUT on eth0"), None);
    }
}
