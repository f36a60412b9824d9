//! The account and group commands (issue 14): what the shell asks, checked for a login here
//! (a command that needs one is refused without asking the tracker), sent to the tracker
//! pair, and its reply put in the words design14.md settles. The group files (upload, list,
//! download, stop) are [`super::group_files`]'s.

use super::account::files;
use super::view::escape;
use super::{Answer, Core, InGroup};
use crate::protocol::Ask;
use std::path::PathBuf;

/// An account or group command, its words already checked by the shell.
pub enum GroupCmd {
    CreateUser {
        id: String,
        password: String,
    },
    Login {
        id: String,
        password: String,
    },
    Logout,
    CreateGroup {
        group: String,
    },
    JoinGroup {
        group: String,
    },
    ListRequests {
        group: String,
    },
    /// `accept_request` (`accept`) or `reject_request`.
    AnswerRequest {
        group: String,
        user: String,
        accept: bool,
    },
    LeaveGroup {
        group: String,
    },
    ListGroups,
    ListFiles {
        group: String,
    },
    UploadFile {
        path: PathBuf,
        group: String,
    },
    DownloadFile {
        group: String,
        file: String,
        dest: PathBuf,
    },
    StopShare {
        group: String,
        file: String,
    },
}

impl GroupCmd {
    /// The command as the user types it.
    fn command(&self) -> &'static str {
        match self {
            GroupCmd::CreateUser { .. } => "create_user",
            GroupCmd::Login { .. } => "login",
            GroupCmd::Logout => "logout",
            GroupCmd::CreateGroup { .. } => "create_group",
            GroupCmd::JoinGroup { .. } => "join_group",
            GroupCmd::ListRequests { .. } => "list_requests",
            GroupCmd::AnswerRequest { accept: true, .. } => "accept_request",
            GroupCmd::AnswerRequest { accept: false, .. } => "reject_request",
            GroupCmd::LeaveGroup { .. } => "leave_group",
            GroupCmd::ListGroups => "list_groups",
            GroupCmd::ListFiles { .. } => "list_files",
            GroupCmd::UploadFile { .. } => "upload_file",
            GroupCmd::DownloadFile { .. } => "download_file",
            GroupCmd::StopShare { .. } => "stop_share",
        }
    }
}

impl Core {
    pub(super) fn group_command(&mut self, cmd: GroupCmd) -> Answer {
        let user = match cmd {
            GroupCmd::CreateUser { id, password } => {
                self.ask(Ask::CreateUser {
                    id: id.clone(),
                    password,
                })?;
                return Ok(vec![format!("created user {id}")]);
            }
            GroupCmd::Login { id, password } => return self.login(id, password),
            GroupCmd::Logout => return self.logout(),
            _ => match self.user() {
                Some(user) => user,
                None => {
                    let c = cmd.command();
                    return Err(format!("{c} needs a login (create_user, then login)"));
                }
            },
        };
        let one = |line: String| Ok(vec![line]);
        match cmd {
            GroupCmd::CreateGroup { group } => {
                self.ask(Ask::CreateGroup {
                    group: group.clone(),
                })?;
                one(format!("created group {group} (you own it)"))
            }
            GroupCmd::JoinGroup { group } => {
                let words = self.ask(Ask::JoinGroup {
                    group: group.clone(),
                })?;
                let owner = escape(words.first().map_or("?", String::as_str));
                one(format!("asked to join {group}; its owner {owner} decides"))
            }
            GroupCmd::ListRequests { group } => {
                let lines = self.ask_list(Ask::ListRequests {
                    group: group.clone(),
                })?;
                if lines.is_empty() {
                    return one(format!("no requests to join {group}"));
                }
                Ok(lines.iter().map(|l| escape(l)).collect())
            }
            GroupCmd::AnswerRequest {
                group,
                user,
                accept: true,
            } => {
                self.ask(Ask::AcceptRequest {
                    group: group.clone(),
                    user: user.clone(),
                })?;
                one(format!("{user} is now a member of {group}"))
            }
            GroupCmd::AnswerRequest { group, user, .. } => {
                self.ask(Ask::RejectRequest {
                    group: group.clone(),
                    user: user.clone(),
                })?;
                one(format!("rejected {user}'s request to join {group}"))
            }
            GroupCmd::LeaveGroup { group } => self.leave_group(&user, group),
            GroupCmd::ListGroups => {
                let lines = self.ask_list(Ask::ListGroups)?;
                Ok(groups_lines(&lines))
            }
            GroupCmd::ListFiles { group } => self.list_files(group),
            GroupCmd::UploadFile { path, group } => self.upload_file(&user, &path, group),
            GroupCmd::DownloadFile { group, file, dest } => {
                self.download_file(&user, group, &file, &dest)
            }
            GroupCmd::StopShare { group, file } => self.stop_share(&user, group, &file),
            GroupCmd::CreateUser { .. } | GroupCmd::Login { .. } | GroupCmd::Logout => Ok(vec![]),
        }
    }

    /// `leave_group`: the tracker drops the membership and the user's shares there; this
    /// client drops its records in the group (downloads in progress are cancelled, their
    /// partial data deleted; finished files stay).
    fn leave_group(&mut self, user: &str, group: String) -> Answer {
        let words = self.ask(Ask::LeaveGroup {
            group: group.clone(),
        })?;
        let line = match words.as_slice() {
            [w, new] if w == "owner" => format!("left {group}; {} owns it now", escape(new)),
            [w] if w == "gone" => format!("left {group}; it had no other members, so it is gone"),
            _ => format!("left {group}"),
        };
        let here = InGroup {
            user: user.to_string(),
            group: group.clone(),
        };
        let mut dropped = 0;
        let mut at = self.records.len();
        while at > 0 {
            at -= 1;
            if self.records[at].group.as_ref() == Some(&here) {
                self.drop_record(at, true);
                dropped += 1;
            }
        }
        self.lost
            .retain(|l| l.saved.group() != Some((user, group.as_str())));
        self.save();
        self.notes.note(&format!("leave_group {group}"));
        if dropped == 0 {
            return Ok(vec![line]);
        }
        Ok(vec![format!(
            "{line} (stopped sharing {} there)",
            files(dropped)
        )])
    }
}

/// A `LIST_GROUPS` answer's lines (`<g> <owner> <members> <you>`) as the user reads them.
fn groups_lines(lines: &[String]) -> Vec<String> {
    if lines.is_empty() {
        return vec!["no groups yet".to_string()];
    }
    lines
        .iter()
        .map(|l| {
            let w: Vec<&str> = l.split(' ').collect();
            let [g, owner, members, you] = w.as_slice() else {
                return escape(l);
            };
            let n: usize = members.parse().unwrap_or(0);
            let members = format!("{n} member{}", super::view::plural(n));
            let you = match *you {
                "owner" => " you own it",
                "member" => " you are a member",
                "asked" => " you asked to join",
                _ => "",
            };
            escape(&format!("{g} (owner {owner}, {members}){you}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_read_as_design14_says() {
        let lines: Vec<String> = [
            "g1 alice 2 owner",
            "g2 bob 1 member",
            "g3 bob 1 asked",
            "g4 carol 3 -",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(
            groups_lines(&lines),
            [
                "g1 (owner alice, 2 members) you own it",
                "g2 (owner bob, 1 member) you are a member",
                "g3 (owner bob, 1 member) you asked to join",
                "g4 (owner carol, 3 members)",
            ]
        );
        assert_eq!(groups_lines(&[]), ["no groups yet"]);
    }
}
