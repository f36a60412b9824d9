use super::*;

#[test]
fn every_request_prints_and_parses_back_to_itself() {
    let all = [
        Request::Hello { role: Role::Peer },
        Request::Offer {
            name: "a b.txt".into(),
            size: 513,
        },
        Request::Join { port: 4242 },
        Request::Hashed {
            name: "a b.txt".into(),
            first: 3,
            count: 2,
        },
        Request::Beat {
            id: 7,
            token: u64::MAX,
        },
        Request::Files,
        Request::Hashes {
            name: "ü".into(),
            generation: 2,
            from: 16,
        },
        Request::Holders {
            name: "f".into(),
            generation: 1,
        },
        Request::Have {
            name: "f".into(),
            runs: vec![
                PieceRun { first: 0, last: 3 },
                PieceRun { first: 7, last: 7 },
            ],
        },
        Request::Have {
            name: "empty".into(),
            runs: vec![],
        },
        Request::Drop {
            name: "gone".into(),
        },
        Request::Wait {
            version: 9,
            millis: 1000,
        },
        Request::Leave,
        Request::Ping,
        Request::Get {
            name: "f".into(),
            first: 128,
            count: 128,
        },
        Request::Open {
            addr: "[::1]:7000".parse().unwrap(),
        },
        Request::Alive {
            token: "0123456789abcdef0123456789abcdef".into(),
        },
        Request::Seed {
            token: "0123456789abcdef0123456789abcdef".into(),
            key: "a".repeat(40),
            name: "my file".into(),
            size: 3,
            bits: "01".into(),
            private: false,
        },
        Request::Seed {
            token: "0123456789abcdef0123456789abcdef".into(),
            key: "a".repeat(40),
            name: "my file".into(),
            size: 3,
            bits: "01".into(),
            private: true,
        },
        Request::Unseed {
            token: "0123456789abcdef0123456789abcdef".into(),
            key: "b".repeat(40),
            size: 7,
        },
        Request::Quit {
            token: "0123456789abcdef0123456789abcdef".into(),
        },
        Request::Seeders {
            key: "c".repeat(40),
            size: 0,
        },
        Request::Records { from: 3, max: 10 },
        Request::Sync {
            tracker: "127.0.0.1:7001".parse().unwrap(),
            epoch: "00000000deadbeef".into(),
            nonce: "ffffffffffffffffffffffffffffffff".into(),
        },
        Request::Vouch {
            nonce: "ffffffffffffffffffffffffffffffff".into(),
        },
        Request::Put {
            seq: 12,
            record: "3@127.0.0.1:7001 session 0123456789abcdef0123456789abcdef live 127.0.0.1:9"
                .into(),
        },
        Request::Seen {
            tokens: vec![
                "0123456789abcdef0123456789abcdef".into(),
                "ffffffffffffffffffffffffffffffff".into(),
            ],
        },
    ];
    let claim = Request::Claim {
        version: "1700000000000@127.0.0.1:7001".into(),
        kind: "user".into(),
        key: "alice".into(),
    };
    for req in all.into_iter().chain([claim]) {
        let line = req.to_string();
        assert_eq!(Request::parse(&line), Ok(req), "{line}");
    }
}

#[test]
fn bad_numbers_names_and_arity_are_errors() {
    for line in [
        "GET f -1 1",
        "GET f abc 1",
        "GET f +1 1",
        "GET f 18446744073709551616 1",
        "GET ../x 0 1",
        "GET f 0",
        "GET f 0 1 2",
        "JOIN 0",
        "JOIN 65536",
        "HAVE f 3-1",
        "HAVE f 4294967296",
        "HELLO p2p/2 peer",
        "HELLO p2p/1 king",
        "OFFER f 1 abc",
        "OFFER f",
        "HASHED f 0 65537",
        "HASHED f -1 1",
        "BEAT 1",
        "BEAT 1 x",
        "HASHES f",
        "HOLDERS f x",
        "FILES extra",
        "SEEDERS abc 1",
        "SEEDERS aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "SEEDERS AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA 1",
        "SEED 127.0.0.1:1 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa f 1 01",
        "SEED 0123456789abcdef0123456789abcdef aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa f 1 0z",
        "SEED 0123456789abcdef0123456789abcdef aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa f 1 01 public",
        "QUIT",
        "QUIT 127.0.0.1:7000",
        "ALIVE 0123456789ABCDEF0123456789ABCDEF",
        "OPEN nowhere",
        "SYNC 127.0.0.1:1 123",
        "SYNC 127.0.0.1:1 00000000deadbeef",
        "VOUCH 1",
        "PUT 1",
        "PUT x 3@a session t live a",
        "SEEN",
        "SEEN abc",
        "CLAIM 1@a user",
        "CLAIM x@a user alice",
        "CLAIM 1@a session alice",
        "CLAIM 1@a group a/b",
        "",
        " ",
        "NOPE",
    ] {
        assert!(Request::parse(line).is_err(), "{line:?} parsed");
    }
}

#[test]
fn errors_name_the_first_bad_field_in_a_fixed_order() {
    let cases = [
        (
            "GET ../x 0",
            "bad_arguments GET wants <name> <first-chunk> <count>, got 2",
        ),
        ("GET ../x y 0", "bad_name file name contains '/'"),
        ("GET f y z", "bad_number chunk y"),
        ("HASHED ../x -1 65537", "bad_number count 65537"),
        ("HASHED ../x -1 2", "bad_name file name contains '/'"),
        ("HASHED f -1 2", "bad_number first -1"),
        ("HAVE ../x 3-1", "bad_run 3-1"),
        ("HELLO p2p/2 king", "bad_hello p2p/2"),
        ("JOIN 0", "bad_number port 0"),
        ("FILES x", "bad_arguments FILES wants nothing, got 1"),
        ("SEED a b c d e", "bad_token a"),
        (
            "SEED 0123456789abcdef0123456789abcdef b c d e",
            "bad_hash b",
        ),
        ("HAVE", "bad_arguments HAVE wants <name> [<run> ...], got 0"),
        ("NOPE 1", "unknown_command NOPE"),
        (" x", "unknown_command  x"),
        ("", "empty_line"),
    ];
    for (line, error) in cases {
        let got = Request::parse(line).map_err(|e| e.to_string());
        assert_eq!(got, Err(error.to_string()), "{line:?}");
    }
}

#[test]
fn runs_collapse_consecutive_pieces() {
    let runs = runs_of(&[0, 1, 2, 5, 7, 8]);
    let words: Vec<String> = runs
        .iter()
        .map(|r| format!("{}-{}", r.first, r.last))
        .collect();
    assert_eq!(words, ["0-2", "5-5", "7-8"]);
}

#[test]
fn replies_split_ok_from_err() {
    assert_eq!(Reply::parse("OK"), Some(Reply::Ok(vec![])));
    assert_eq!(
        Reply::parse("OK 3 x"),
        Some(Reply::Ok(vec!["3".into(), "x".into()]))
    );
    assert_eq!(Reply::parse("ERR no"), Some(Reply::Err("no".into())));
    assert_eq!(Reply::parse("WHAT"), None);
}

#[test]
fn account_requests_print_and_parse_back_and_check_their_words() {
    let token = "0123456789abcdef0123456789abcdef".to_string();
    let key = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa".to_string();
    let g = || "g.1".to_string();
    let asks = [
        Ask::CreateUser {
            id: "alice".into(),
            password: "p%w!".into(),
        },
        Ask::Login {
            id: "alice".into(),
            password: "pw".into(),
        },
        Ask::Logout,
        Ask::CreateGroup { group: g() },
        Ask::JoinGroup { group: g() },
        Ask::ListRequests { group: g() },
        Ask::AcceptRequest {
            group: g(),
            user: "bob".into(),
        },
        Ask::RejectRequest {
            group: g(),
            user: "bob".into(),
        },
        Ask::LeaveGroup { group: g() },
        Ask::ListGroups,
        Ask::ListFiles { group: g() },
        Ask::UploadFile {
            group: g(),
            key: key.clone(),
            size: 3 * 512 * 1024 + 1,
            name: "my notes.txt".into(),
        },
        Ask::FileHashes {
            group: g(),
            key: key.clone(),
            size: 0,
            from: 7,
        },
        Ask::GroupSeeders {
            group: g(),
            key: key.clone(),
            size: 9,
        },
        Ask::StopShare {
            group: g(),
            key: key.clone(),
            size: 9,
        },
    ];
    for ask in asks {
        let req = Request::Account {
            token: token.clone(),
            ask,
        };
        let line = req.to_string();
        assert_eq!(Request::parse(&line), Ok(req), "{line}");
    }
    let upload = Ask::UploadFile {
        group: g(),
        key: key.clone(),
        size: 3 * 512 * 1024 + 1,
        name: "f".into(),
    };
    assert_eq!(upload.payload_len(), 4 * 20);
    assert_eq!(Ask::Logout.payload_len(), 0);
    assert_eq!(Ask::ListGroups.command(), "list_groups");
    for line in [
        format!("LOGIN {token} alice"),
        format!("LOGIN {token} a%20b pw"),
        format!("LOGIN {token} .alice pw"),
        "LOGIN nottoken alice pw".to_string(),
        format!("CREATE_USER {token} alice a%20b"),
        format!("CREATE_USER {token} {} pw", "a".repeat(33)),
        format!("CREATE_GROUP {token} "),
        format!("LOGOUT {token} extra"),
        format!("UPLOAD_FILE {token} g {key} 137438953473 f"),
        format!("UPLOAD_FILE {token} g {key} 1 .f"),
        format!("FILE_HASHES {token} g {key} 1 -1"),
        format!("STOP_SHARE {token} g ABC 1"),
    ] {
        assert!(Request::parse(&line).is_err(), "{line:?} parsed");
    }
    assert_eq!(
        Request::parse(&format!("JOIN_GROUP {token} a/b"))
            .unwrap_err()
            .to_string(),
        "bad_name a group name is 1 to 32 letters, digits, '-', '_' or '.' (not starting with '.' or '-'); got \"a/b\""
    );
}
