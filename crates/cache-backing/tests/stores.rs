//! Both stores against a real database: the same checks on SQLite (a temp file) and on
//! PostgreSQL (`FERROCACHE_POSTGRES`, skipped when unset). Each test uses its own table.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cache_backing::{AnyStore, Backing, Mapping, Row, Write};

static COUNTER: AtomicUsize = AtomicUsize::new(0);

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

fn temp_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(unique("ferrocache-store-test"));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn pg_url(test: &str) -> Option<String> {
    match std::env::var("FERROCACHE_POSTGRES") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            eprintln!("SKIPPED {test}: set FERROCACHE_POSTGRES=postgres://... to run it");
            None
        }
    }
}

async fn pg_exec(url: &str, sql: &str) {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client.batch_execute(sql).await.unwrap();
}

fn put(db: u32, key: &str, value: &str, expires_at: u64) -> Write {
    let mut v = vec![1u8];
    v.extend_from_slice(value.as_bytes());
    Write::Put {
        db,
        key: key.into(),
        row: Row {
            kind: 0,
            value: v,
            expires_at,
        },
    }
}

fn now_ms() -> u64 {
    cache_backing::engine::now_ms()
}

async fn value(store: &AnyStore, db: u32, key: &str) -> Option<String> {
    store
        .load(db, key.as_bytes(), now_ms())
        .await
        .unwrap()
        .map(|r| String::from_utf8(r.value[1..].to_vec()).unwrap())
}

async fn generic_table_semantics(store: &AnyStore) {
    store
        .apply(&[
            put(0, "a", "1", 0),
            put(0, "a", "2", 0),
            put(1, "a", "other db", 0),
            put(0, "b", "x", 0),
            put(0, "gone", "soon", now_ms() - 1),
            put(0, "later", "y", now_ms() + 60_000),
        ])
        .await
        .unwrap();
    assert_eq!(value(store, 0, "a").await.as_deref(), Some("2"));
    assert_eq!(value(store, 1, "a").await.as_deref(), Some("other db"));
    assert_eq!(
        value(store, 0, "gone").await,
        None,
        "expired rows are not served"
    );
    let later = store.load(0, b"later", now_ms()).await.unwrap().unwrap();
    assert!(later.expires_at > now_ms());
    store
        .apply(&[
            Write::Delete {
                db: 0,
                key: "b".into(),
            },
            Write::FlushDb(1),
            put(1, "c", "after flush", 0),
        ])
        .await
        .unwrap();
    assert_eq!(value(store, 0, "b").await, None);
    assert_eq!(value(store, 1, "a").await, None);
    assert_eq!(value(store, 1, "c").await.as_deref(), Some("after flush"));
    assert_eq!(store.purge_expired(now_ms()).await.unwrap(), 1);
    store.apply(&[Write::FlushAll]).await.unwrap();
    assert_eq!(value(store, 0, "a").await, None);
    store.health().await.unwrap();
}

fn hash_row(fields: &[(&str, &str)]) -> Row {
    Row {
        kind: cache_backing::Kind::Hash as i16,
        value: cache_backing::encoding::encode_hash(
            fields.iter().map(|(a, b)| (a.as_bytes(), b.as_bytes())),
        ),
        expires_at: 0,
    }
}

fn fields(row: &Row) -> Vec<(String, String)> {
    let mut f: Vec<(String, String)> = cache_backing::encoding::hash_fields(&row.value)
        .unwrap()
        .into_iter()
        .map(|(a, b)| (String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap()))
        .collect();
    f.sort();
    f
}

async fn mapped_table_semantics(store: &AnyStore) {
    let row = store.load(0, b"user:1", now_ms()).await.unwrap().unwrap();
    assert_eq!(
        fields(&row),
        vec![("age".into(), "30".into()), ("name".into(), "ann".into())]
    );
    assert!(store.load(0, b"user:2", now_ms()).await.unwrap().is_none());
    store
        .apply(&[Write::Put {
            db: 0,
            key: "user:2".into(),
            row: hash_row(&[("name", "bob")]),
        }])
        .await
        .unwrap();
    let row = store.load(0, b"user:2", now_ms()).await.unwrap().unwrap();
    assert_eq!(fields(&row), vec![("name".into(), "bob".into())]);
    // A field that is no column is refused, and nothing of the batch is applied.
    let err = store
        .apply(&[
            Write::Put {
                db: 0,
                key: "user:1".into(),
                row: hash_row(&[("name", "changed")]),
            },
            Write::Put {
                db: 0,
                key: "user:3".into(),
                row: hash_row(&[("nope", "x")]),
            },
        ])
        .await
        .unwrap_err();
    assert!(!err.transient, "{err:?}");
    let row = store.load(0, b"user:1", now_ms()).await.unwrap().unwrap();
    assert!(fields(&row).contains(&("name".into(), "ann".into())));
    store
        .apply(&[Write::Delete {
            db: 0,
            key: "user:1".into(),
        }])
        .await
        .unwrap();
    assert!(store.load(0, b"user:1", now_ms()).await.unwrap().is_none());
    // Other databases never use the mapping.
    store.apply(&[put(2, "user:1", "plain", 0)]).await.unwrap();
    assert_eq!(value(store, 2, "user:1").await.as_deref(), Some("plain"));
}

#[tokio::test]
async fn sqlite_generic_and_mapped() {
    let dir = temp_dir();
    let path = dir.join("db.sqlite");
    let url = format!("sqlite:{}", path.display());
    {
        let conn = rusqlite_like_setup(&path);
        drop(conn);
    }
    let maps = Mapping::parse_list("user:=users.id").unwrap();
    let store = AnyStore::open(&url, "kv", maps, Duration::from_secs(5), true, "")
        .await
        .unwrap();
    generic_table_semantics(&store).await;
    mapped_table_semantics(&store).await;
    drop(store);
    let _ = std::fs::remove_dir_all(&dir);
}

/// Creates the application's `users` table, as another program would.
fn rusqlite_like_setup(path: &std::path::Path) -> cache_backing::sqlite::RawConnection {
    let conn = cache_backing::sqlite::RawConnection::open(path).unwrap();
    conn.execute_batch(
        "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT, age INTEGER);
         INSERT INTO users (id, name, age) VALUES (1, 'ann', 30);",
    )
    .unwrap();
    conn
}

#[tokio::test]
async fn postgres_generic_and_mapped() {
    let Some(url) = pg_url("postgres_generic_and_mapped") else {
        return;
    };
    let table = unique("t_kv");
    let users = unique("t_users");
    pg_exec(
        &url,
        &format!(
            "CREATE TABLE {users} (id bigint PRIMARY KEY, name text, age integer);
             INSERT INTO {users} VALUES (1, 'ann', 30);"
        ),
    )
    .await;
    let maps = Mapping::parse_list(&format!("user:={users}.id")).unwrap();
    let store = AnyStore::open(&url, &table, maps, Duration::from_secs(5), true, "")
        .await
        .unwrap();
    generic_table_semantics(&store).await;
    mapped_table_semantics(&store).await;
    drop(store);
    pg_exec(&url, &format!("DROP TABLE {table}; DROP TABLE {users};")).await;
}

#[tokio::test]
async fn postgres_refuses_a_bad_url_and_classifies_a_dead_server_as_transient() {
    // A server that is down at open is not fatal (a node starts and retries on first use);
    // what fails meanwhile fails as transient, so write-back retries it.
    let store = AnyStore::open(
        "postgres://nobody@127.0.0.1:1/none",
        "kv",
        Vec::new(),
        Duration::from_millis(500),
        true,
        "",
    )
    .await
    .expect("a dead server is retried later, not refused at open");
    let err = store.health().await.expect_err("port 1 answered");
    assert!(err.transient, "{err:?}");
    let err = match AnyStore::open(
        "mysql://x",
        "kv",
        Vec::new(),
        Duration::from_secs(1),
        true,
        "",
    )
    .await
    {
        Err(e) => e,
        Ok(_) => panic!("mysql accepted"),
    };
    assert!(!err.transient);
}
