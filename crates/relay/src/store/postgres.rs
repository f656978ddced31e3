//! The PostgreSQL store: several relay nodes on one database.
//!
//! It keeps the same rows as the SQLite store (`docs/relay-protocol.md`, "What the relay
//! stores"): random `mid`/`eid` row ids, per-mailbox message ids from a random start, times
//! rounded down to the hour, and no relay-wide sequence. One extra one-row table holds the
//! schema version.
//!
//! Writes go through one writer task per node that owns its own connection and commits in
//! groups, as on SQLite: it takes every operation queued so far (up to `group_commit_max`),
//! sends their statements pipelined inside one transaction (`synchronous_commit = on`, so the
//! commit is durable before anyone hears OK), commits, and only then answers them and calls the
//! append listener. Each operation is one statement in the common case. Operations are applied
//! in receive-id order (stable, so one mailbox keeps its order), so two nodes' batches take row
//! locks in the same order; a deadlock or serialization failure that still happens is retried
//! with the whole batch. Reads use a small connection pool.
//!
//! Other nodes learn of a commit through LISTEN/NOTIFY on the channel [`CHANNEL`]: at most one
//! NOTIFY per committed batch, and only when it stored an envelope or announced a subscription.
//! Its payload names no mailbox: it says which node sent it (a random token drawn at start),
//! whether envelopes were stored, and for each SUBSCRIBE or DELETE of the batch a salted hash (fresh
//! salt per batch) that only a node holding that receive id can recognise. A node that hears
//! "envelopes stored" re-reads `next_message_id` of the mailboxes subscribed on it and tells
//! the hub which ones moved ([`Cluster::appended_elsewhere`]); a subscription hash it
//! recognises ends its own subscription if its own announcement came first
//! ([`Cluster::subscribed_elsewhere`]; notifications arrive in commit order).
//!
//! The expiry sweeper may run on every node: it locks the mailboxes it sweeps with
//! `FOR UPDATE SKIP LOCKED`, so two sweepers (or a sweeper and a writer) never wait on each
//! other, and every writer statement locks the mailbox row before its envelopes.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use futures_util::StreamExt;
use sealpost_wire::{AuthPublicKey, MessageId, ReceiveId, SendId};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, Client, NoTls, Statement, Transaction};

use super::{
    AppendListener, AppendOutcome, Cluster, CommitObserver, Expired, FIRST_MESSAGE_ID_BELOW,
    NewMailbox, PendingAppend, Quota, Reply, SecureOutcome, SendTarget, Store, StoreError,
    StoreFuture, StoredEnvelope, as_i64, as_u64, bucket, queue_write, random_below, random_row_id,
    sender_changed, take_slot, to_id,
};

/// The NOTIFY channel every node LISTENs on.
pub const CHANNEL: &str = "sealpost_relay";

/// The schema this code writes (table `relay_schema`).
const SCHEMA_VERSION: i32 = 3;

/// Schema version 1: the SQLite store's two tables, in PostgreSQL types. Envelope bodies are
/// ciphertext, so TOAST does not try to compress them (`STORAGE EXTERNAL`).
const SCHEMA: &str = "
CREATE TABLE mailbox (
    mid bigint PRIMARY KEY,
    receive_id bytea NOT NULL UNIQUE,
    send_id bytea NOT NULL UNIQUE,
    auth_key bytea NOT NULL,
    send_secret_hash bytea NOT NULL,
    sender_key bytea,
    envelope_count bigint NOT NULL DEFAULT 0,
    envelope_bytes bigint NOT NULL DEFAULT 0,
    next_message_id bigint NOT NULL,
    last_used bigint NOT NULL
);
CREATE INDEX mailbox_by_last_used ON mailbox(last_used);
CREATE TABLE envelope (
    eid bigint PRIMARY KEY,
    mid bigint NOT NULL,
    message_id bigint NOT NULL,
    received_at bigint NOT NULL,
    body bytea NOT NULL
);
ALTER TABLE envelope ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE UNIQUE INDEX envelope_by_mailbox ON envelope(mid, message_id);
CREATE INDEX envelope_by_age ON envelope(received_at);
";

/// Most subscription hashes in one NOTIFY payload (PostgreSQL allows 8000 bytes; each hash
/// takes 33). A batch with more SUBSCRIBEs is cut short and the rest go in the next batch.
const MAX_ANNOUNCEMENTS_PER_BATCH: usize = 200;

/// Context label of the salted subscription hash in NOTIFY payloads.
const ANNOUNCE_CONTEXT: &[u8] = b"sealpost/v1/relay/subscribe-announce";

/// Most mailboxes one sweep handles (the next sweep takes the rest).
const SWEEP_MAILBOXES: i64 = 10_000;

/// How often a batch hit by a deadlock or serialization failure is tried again.
const BATCH_ATTEMPTS: usize = 4;

/// One queued write.
#[derive(Clone)]
enum Op {
    Create(NewMailbox),
    Append(PendingAppend),
    /// One ACK frame's ids: one statement for all of them.
    Ack(ReceiveId, Vec<MessageId>, u64),
    Secure(ReceiveId, AuthPublicKey, u64),
    Delete(ReceiveId),
    Touch(ReceiveId, u64),
}

impl Op {
    /// SUBSCRIBE (a touch) and DELETE are announced to the other nodes: both end a subscription
    /// of the mailbox held elsewhere.
    fn announces(&self) -> bool {
        matches!(self, Op::Touch(..) | Op::Delete(_))
    }

    fn receive_id(&self) -> &ReceiveId {
        match self {
            Op::Create(mailbox) => &mailbox.receive_id,
            Op::Append(append) => &append.receive_id,
            Op::Ack(receive_id, ..)
            | Op::Secure(receive_id, ..)
            | Op::Delete(receive_id)
            | Op::Touch(receive_id, _) => receive_id,
        }
    }
}

/// Where an operation's answer goes.
enum Replier {
    Bool(Reply<bool>),
    Append(Reply<AppendOutcome>),
    Unit(Reply<()>),
    Secure(Reply<SecureOutcome>),
}

/// What an operation did inside its (not yet committed) transaction.
enum Applied {
    Bool(bool),
    Append(AppendOutcome, Option<StoredEnvelope>),
    Unit,
    Secure(SecureOutcome),
}

struct Queued {
    op: Op,
    reply: Replier,
}

/// Sends one answer (a mismatched pair cannot happen; it answers an error).
fn deliver(reply: Replier, result: Result<Applied, StoreError>) {
    match (reply, result) {
        (Replier::Bool(r), Ok(Applied::Bool(v))) => drop(r.send(Ok(v))),
        (Replier::Append(r), Ok(Applied::Append(v, _))) => drop(r.send(Ok(v))),
        (Replier::Unit(r), Ok(Applied::Unit)) => drop(r.send(Ok(()))),
        (Replier::Secure(r), Ok(Applied::Secure(v))) => drop(r.send(Ok(v))),
        (reply, result) => {
            let error = match result {
                Err(error) => error,
                Ok(_) => StoreError::WriterGone,
            };
            match reply {
                Replier::Bool(r) => drop(r.send(Err(error))),
                Replier::Append(r) => drop(r.send(Err(error))),
                Replier::Unit(r) => drop(r.send(Err(error))),
                Replier::Secure(r) => drop(r.send(Err(error))),
            }
        }
    }
}

/// The PostgreSQL store.
pub struct PostgresStore {
    writer: Mutex<Option<mpsc::UnboundedSender<Queued>>>,
    writer_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    listener_task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    pub(super) pool: Pool,
    /// The blob writer (`super::postgres_blobs`): blob writes in arrival order.
    pub(super) blob_writer: super::postgres_blobs::BlobWriter,
}

/// Opens a connection whose driver task runs in the background.
async fn connect(config: &tokio_postgres::Config) -> Result<Client, StoreError> {
    let (client, connection) = config.connect(NoTls).await?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(%error, "postgres connection ended");
        }
    });
    Ok(client)
}

/// Brings the database to [`SCHEMA_VERSION`], under an advisory lock so that nodes starting
/// together migrate once.
async fn ensure_schema(client: &mut Client) -> Result<(), StoreError> {
    let transaction = client.transaction().await?;
    transaction
        .execute(
            "SELECT pg_advisory_xact_lock(hashtext('sealpost_relay_schema'))",
            &[],
        )
        .await?;
    transaction
        .batch_execute("CREATE TABLE IF NOT EXISTS relay_schema (version integer NOT NULL)")
        .await?;
    let version: Option<i32> = transaction
        .query_opt("SELECT max(version) FROM relay_schema", &[])
        .await?
        .and_then(|row| row.get(0));
    match version {
        Some(version) if version > SCHEMA_VERSION => {
            return Err(StoreError::Open(format!(
                "database schema {version} is newer than this relay ({SCHEMA_VERSION})"
            )));
        }
        Some(version) if version == SCHEMA_VERSION => {}
        _ => {
            if version.is_none() {
                transaction.batch_execute(SCHEMA).await?;
            }
            // Version 1 → 2 (or a new database): the blob tables (IF NOT EXISTS); 2 → 3: the
            // grants' count.
            transaction
                .batch_execute(super::postgres_blobs::SCHEMA)
                .await?;
            transaction
                .batch_execute(super::postgres_blobs::RELEASE_SCHEMA)
                .await?;
            let record = if version.is_none() {
                "INSERT INTO relay_schema (version) VALUES ($1)"
            } else {
                "UPDATE relay_schema SET version = $1"
            };
            transaction.execute(record, &[&SCHEMA_VERSION]).await?;
        }
    }
    transaction.commit().await?;
    Ok(())
}

/// The writer's statements, prepared once per connection (so a pipelined batch sends each
/// operation as one Bind/Execute, no Parse).
struct Statements {
    create: Statement,
    append: Statement,
    append_refused: Statement,
    append_again: Statement,
    ack: Statement,
    secure: Statement,
    delete: Statement,
    touch: Statement,
    notify: Statement,
}

/// A writer connection: durable commits whatever the server's default.
async fn writer_connection(
    config: &tokio_postgres::Config,
) -> Result<(Client, Statements), StoreError> {
    let client = connect(config).await?;
    client.batch_execute("SET synchronous_commit TO on").await?;
    let statements = Statements {
        create: client.prepare(CREATE).await?,
        append: client.prepare(APPEND).await?,
        append_refused: client.prepare(APPEND_REFUSED).await?,
        append_again: client.prepare(APPEND_AGAIN).await?,
        ack: client.prepare(ACK).await?,
        secure: client.prepare(SECURE).await?,
        delete: client.prepare(DELETE).await?,
        touch: client.prepare(TOUCH).await?,
        notify: client.prepare("SELECT pg_notify($1, $2)").await?,
    };
    Ok((client, statements))
}

/// A clash of the random row id or of the random receive/send ids inserts nothing; the caller
/// retries with new ids.
const CREATE: &str = "INSERT INTO mailbox
    (mid, receive_id, send_id, auth_key, send_secret_hash, next_message_id, last_used)
    VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";

/// One statement: take the next message id and count the envelope if the mailbox exists,
/// still has the expected sender key and has room; insert the envelope with that id.
const APPEND: &str = "WITH m AS (
      UPDATE mailbox SET envelope_count = envelope_count + 1,
        envelope_bytes = envelope_bytes + $3::bigint, next_message_id = next_message_id + 1
      WHERE receive_id = $1 AND sender_key IS NOT DISTINCT FROM $2::bytea
        AND envelope_count < $4::bigint AND envelope_bytes + $3::bigint <= $5::bigint
      RETURNING mid, next_message_id - 1 AS message_id
    ), e AS (
      INSERT INTO envelope (eid, mid, message_id, received_at, body)
      SELECT $6::bigint, mid, message_id, $7::bigint, $8::bytea FROM m
      ON CONFLICT DO NOTHING RETURNING eid
    )
    SELECT m.mid, m.message_id, (SELECT count(*) FROM e) FROM m";

/// Why [`APPEND`] took nothing.
const APPEND_REFUSED: &str = "SELECT sender_key FROM mailbox WHERE receive_id = $1";

/// The envelope again under a new random row id (the first one clashed).
const APPEND_AGAIN: &str = "INSERT INTO envelope (eid, mid, message_id, received_at, body)
    VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING";

/// The mailbox row is locked first (FOR UPDATE), then its envelope: the order every writer
/// statement and the sweeper use.
const ACK: &str = "WITH m AS (SELECT mid FROM mailbox WHERE receive_id = $1 FOR UPDATE),
    d AS (DELETE FROM envelope WHERE mid = (SELECT mid FROM m) AND message_id = ANY($2)
          RETURNING octet_length(body) AS length)
    UPDATE mailbox SET envelope_count = envelope_count - (SELECT count(*) FROM d),
      envelope_bytes = envelope_bytes - (SELECT coalesce(sum(length), 0) FROM d),
      last_used = $3
    WHERE mid = (SELECT mid FROM m)";

const SECURE: &str = "WITH u AS (UPDATE mailbox SET sender_key = $2, last_used = $3
                   WHERE receive_id = $1 AND sender_key IS NULL RETURNING mid)
    SELECT (SELECT count(*) FROM u), EXISTS (SELECT 1 FROM mailbox WHERE receive_id = $1)";

const DELETE: &str = "WITH m AS (DELETE FROM mailbox WHERE receive_id = $1 RETURNING mid)
    DELETE FROM envelope WHERE mid IN (SELECT mid FROM m)";

const TOUCH: &str = "UPDATE mailbox SET last_used = $2 WHERE receive_id = $1";

impl PostgresStore {
    /// Connects, migrates the schema and starts the writer and the LISTEN task.
    pub async fn open(
        config: &tokio_postgres::Config,
        group_commit_max: usize,
        listener: AppendListener,
        observer: CommitObserver,
        cluster: Arc<dyn Cluster>,
    ) -> Result<Self, StoreError> {
        let mut client = connect(config).await?;
        ensure_schema(&mut client).await?;
        drop(client);
        let (writer_client, statements) = writer_connection(config).await?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(8)
            .build()
            .map_err(|e| StoreError::Pool(e.to_string()))?;
        let mut node = [0u8; 8];
        getrandom::fill(&mut node).map_err(|e| StoreError::Randomness(e.to_string()))?;
        let node = hex(&node);
        let (sender, receiver) = mpsc::unbounded_channel();
        let writer = Writer {
            client: writer_client,
            statements,
            config: config.clone(),
            batch_max: group_commit_max.max(1),
            listener,
            observer,
            node: node.clone(),
        };
        let writer_task = tokio::spawn(writer.run(receiver));
        let listen_client = connect_listener(config).await?;
        let listener_task = tokio::spawn(listen_loop(
            config.clone(),
            listen_client,
            pool.clone(),
            cluster,
            node,
        ));
        let blob_writer = super::postgres_blobs::BlobWriter::start(pool.clone());
        Ok(Self {
            writer: Mutex::new(Some(sender)),
            writer_task: Mutex::new(Some(writer_task)),
            listener_task: Mutex::new(Some(listener_task)),
            pool,
            blob_writer,
        })
    }

    fn submit<T: Send + 'static>(
        &self,
        op: Op,
        wrap: impl FnOnce(Reply<T>) -> Replier,
    ) -> StoreFuture<'_, T> {
        queue_write(&self.writer, |reply| Queued {
            op,
            reply: wrap(reply),
        })
    }

    /// Runs `read` on a pooled connection when the future is first polled. The future owns
    /// what it needs (a handle to the pool), so it may outlive `self`.
    pub(super) fn read<T, F>(
        &self,
        read: impl FnOnce(deadpool_postgres::Object) -> F + Send + 'static,
    ) -> StoreFuture<'static, T>
    where
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let pool = self.pool.clone();
        Box::pin(async move { read(pooled(&pool).await?).await })
    }
}

/// A connection from the pool.
pub(super) async fn pooled(pool: &Pool) -> Result<deadpool_postgres::Object, StoreError> {
    pool.get()
        .await
        .map_err(|e| StoreError::Pool(e.to_string()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The salted hash of a receive id in a subscription announcement (16 bytes, hex).
fn announce_hash(salt: &[u8], receive_id: &ReceiveId) -> String {
    let mut hasher = Sha256::new();
    hasher.update(ANNOUNCE_CONTEXT);
    hasher.update(salt);
    hasher.update(receive_id.as_bytes());
    let digest: [u8; 32] = hasher.finalize().into();
    hex(&digest[..16])
}

struct Writer {
    client: Client,
    statements: Statements,
    config: tokio_postgres::Config,
    batch_max: usize,
    listener: AppendListener,
    observer: CommitObserver,
    node: String,
}

/// Is this a failure that trying the batch again can cure?
fn retryable(error: &StoreError) -> bool {
    match error {
        StoreError::Conflict(_) => true,
        StoreError::Postgres(error) => error.code().is_some_and(|code| {
            *code == SqlState::T_R_DEADLOCK_DETECTED || *code == SqlState::T_R_SERIALIZATION_FAILURE
        }),
        _ => false,
    }
}

impl Writer {
    async fn run(mut self, mut receiver: mpsc::UnboundedReceiver<Queued>) {
        let mut batch: Vec<Queued> = Vec::with_capacity(self.batch_max);
        while let Some(first) = receiver.recv().await {
            let mut announcements = usize::from(first.op.announces());
            batch.push(first);
            while batch.len() < self.batch_max && announcements < MAX_ANNOUNCEMENTS_PER_BATCH {
                match receiver.try_recv() {
                    Ok(queued) => {
                        announcements += usize::from(queued.op.announces());
                        batch.push(queued);
                    }
                    Err(_) => break,
                }
            }
            // Receive-id order (stable): every node takes mailbox row locks in the same order.
            batch.sort_by(|a, b| {
                a.op.receive_id()
                    .as_bytes()
                    .cmp(b.op.receive_id().as_bytes())
            });
            let started = std::time::Instant::now();
            let operations = batch.len();
            let ops: Vec<Op> = batch.iter().map(|queued| queued.op.clone()).collect();
            let mut outcome = Err(StoreError::WriterGone);
            for _ in 0..BATCH_ATTEMPTS {
                if self.client.is_closed() {
                    match writer_connection(&self.config).await {
                        Ok((client, statements)) => {
                            self.client = client;
                            self.statements = statements;
                        }
                        Err(error) => {
                            tracing::warn!(%error, "store writer cannot reconnect");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            outcome = Err(error);
                            continue;
                        }
                    }
                }
                outcome = self.commit(&ops).await;
                match &outcome {
                    Err(error) if retryable(error) => {
                        tracing::debug!(%error, "store batch conflicted; trying again");
                    }
                    _ => break,
                }
            }
            (self.observer)(operations, started.elapsed());
            match outcome {
                Ok(results) => {
                    for ((queued, result), op) in batch.drain(..).zip(results).zip(&ops) {
                        if let (Ok(Applied::Append(_, Some(stored))), Op::Append(append)) =
                            (&result, op)
                        {
                            (self.listener)(append.receive_id, stored.clone());
                        }
                        deliver(queued.reply, result);
                    }
                }
                Err(error) => {
                    tracing::error!(%error, "store commit failed; answering the batch with errors");
                    for queued in batch.drain(..) {
                        deliver(queued.reply, Err(StoreError::WriterGone));
                    }
                }
            }
        }
    }

    /// Applies a batch in one transaction and commits it; per-operation results on success.
    async fn commit(&mut self, ops: &[Op]) -> Result<Vec<Result<Applied, StoreError>>, StoreError> {
        let statements = &self.statements;
        let transaction = self.client.transaction().await?;
        // Pipelined: every statement is sent before the first answer is awaited.
        let results: Vec<Result<Applied, StoreError>> = futures_util::future::join_all(
            ops.iter().map(|op| apply(&transaction, statements, op)),
        )
        .await;
        // In a failed transaction every later statement fails too: report the first cause.
        if let Some(cause) = results.iter().find_map(|r| match r {
            Err(StoreError::Postgres(e))
                if e.code() != Some(&SqlState::IN_FAILED_SQL_TRANSACTION) =>
            {
                Some(e)
            }
            _ => None,
        }) {
            return Err(clone_error(cause));
        }
        if results
            .iter()
            .any(|r| matches!(r, Err(StoreError::Postgres(_))))
        {
            return Err(StoreError::Statement("batch aborted".into()));
        }
        let stored_any = results
            .iter()
            .any(|r| matches!(r, Ok(Applied::Append(_, Some(_)))));
        let subscribed: Vec<&ReceiveId> = ops
            .iter()
            .filter_map(|op| match op {
                // A DELETE ends the subscription on other nodes too, as on one node.
                Op::Touch(receive_id, _) | Op::Delete(receive_id) => Some(receive_id),
                _ => None,
            })
            .collect();
        if stored_any || !subscribed.is_empty() {
            let mut salt = [0u8; 16];
            getrandom::fill(&mut salt).map_err(|e| StoreError::Randomness(e.to_string()))?;
            let mut payload = format!(
                "v1 {} {} {}",
                self.node,
                if stored_any { "a" } else { "-" },
                hex(&salt)
            );
            for receive_id in subscribed {
                payload.push(' ');
                payload.push_str(&announce_hash(&salt, receive_id));
            }
            transaction
                .execute(&statements.notify, &[&CHANNEL, &payload])
                .await?;
        }
        transaction.commit().await?;
        Ok(results)
    }
}

/// A failed statement's error as a store error (the driver's error type is not `Clone`).
fn clone_error(error: &tokio_postgres::Error) -> StoreError {
    match error.code() {
        Some(code)
            if *code == SqlState::T_R_DEADLOCK_DETECTED
                || *code == SqlState::T_R_SERIALIZATION_FAILURE =>
        {
            StoreError::Conflict(error.to_string())
        }
        _ => StoreError::Statement(error.to_string()),
    }
}

async fn apply(c: &Transaction<'_>, st: &Statements, op: &Op) -> Result<Applied, StoreError> {
    match op {
        Op::Create(m) => {
            let inserted = c
                .execute(
                    &st.create,
                    &[
                        &random_row_id()?,
                        &m.receive_id.as_bytes().as_slice(),
                        &m.send_id.as_bytes().as_slice(),
                        &m.auth_key.as_bytes().as_slice(),
                        &m.send_secret_hash.as_slice(),
                        &as_i64(random_below(FIRST_MESSAGE_ID_BELOW)?.max(1)),
                        &as_i64(bucket(m.now)),
                    ],
                )
                .await?;
            Ok(Applied::Bool(inserted == 1))
        }
        Op::Append(pending) => append(c, st, pending).await,
        Op::Ack(receive_id, message_ids, now) => {
            let message_ids: Vec<i64> = message_ids.iter().map(|id| as_i64(id.0)).collect();
            c.execute(
                &st.ack,
                &[
                    &receive_id.as_bytes().as_slice(),
                    &message_ids,
                    &as_i64(bucket(*now)),
                ],
            )
            .await?;
            Ok(Applied::Unit)
        }
        Op::Secure(receive_id, sender_key, now) => {
            let row = c
                .query_one(
                    &st.secure,
                    &[
                        &receive_id.as_bytes().as_slice(),
                        &sender_key.as_bytes().as_slice(),
                        &as_i64(bucket(*now)),
                    ],
                )
                .await?;
            let secured: i64 = row.get(0);
            let exists: bool = row.get(1);
            Ok(Applied::Secure(if secured == 1 {
                SecureOutcome::Secured
            } else if exists {
                SecureOutcome::AlreadySecured
            } else {
                SecureOutcome::Gone
            }))
        }
        Op::Delete(receive_id) => {
            c.execute(&st.delete, &[&receive_id.as_bytes().as_slice()])
                .await?;
            Ok(Applied::Unit)
        }
        Op::Touch(receive_id, now) => {
            c.execute(
                &st.touch,
                &[&receive_id.as_bytes().as_slice(), &as_i64(bucket(*now))],
            )
            .await?;
            Ok(Applied::Unit)
        }
    }
}

async fn append(
    c: &Transaction<'_>,
    st: &Statements,
    pending: &PendingAppend,
) -> Result<Applied, StoreError> {
    let PendingAppend {
        receive_id,
        expected_sender_key,
        envelope,
        now,
        quota,
    } = pending;
    let length = envelope.len() as i64;
    let received_at = bucket(*now);
    let expected: Option<&[u8]> = expected_sender_key
        .as_ref()
        .map(|k| k.as_bytes().as_slice());
    let body: &[u8] = envelope;
    let row = c
        .query_opt(
            &st.append,
            &[
                &receive_id.as_bytes().as_slice(),
                &expected,
                &length,
                &as_i64(quota.max_envelopes),
                &as_i64(quota.max_bytes),
                &random_row_id()?,
                &as_i64(received_at),
                &body,
            ],
        )
        .await?;
    let Some(row) = row else {
        // Nothing taken: find out why, in the order SQLite checks.
        let row = c
            .query_opt(&st.append_refused, &[&receive_id.as_bytes().as_slice()])
            .await?;
        let Some(row) = row else {
            return Ok(Applied::Append(AppendOutcome::Gone, None));
        };
        if sender_changed(row.get(0), expected_sender_key) {
            return Ok(Applied::Append(AppendOutcome::SenderChanged, None));
        }
        return Ok(Applied::Append(AppendOutcome::QuotaExceeded, None));
    };
    let mid: i64 = row.get(0);
    let message_id: i64 = row.get(1);
    let mut inserted: i64 = row.get(2);
    // A random row id clashes with probability ~ rows / 2^63; draw again if it ever does.
    for _ in 0..3 {
        if inserted == 1 {
            break;
        }
        let again = c
            .execute(
                &st.append_again,
                &[
                    &random_row_id()?,
                    &mid,
                    &message_id,
                    &as_i64(received_at),
                    &body,
                ],
            )
            .await?;
        inserted = i64::try_from(again).unwrap_or(0);
    }
    if inserted != 1 {
        return Err(StoreError::Randomness(
            "four envelope row ids clashed".into(),
        ));
    }
    let message_id = MessageId(as_u64(message_id));
    let stored = StoredEnvelope {
        message_id,
        received_at,
        envelope: envelope.clone(),
    };
    Ok(Applied::Append(
        AppendOutcome::Stored { message_id },
        Some(stored),
    ))
}

/// Opens the LISTEN connection; notifications go to the returned receiver.
async fn connect_listener(
    config: &tokio_postgres::Config,
) -> Result<(Client, mpsc::UnboundedReceiver<String>), StoreError> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (sender, receiver) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(notification)) => {
                    if sender.send(notification.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "postgres LISTEN connection broke");
                    return;
                }
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    Ok((client, receiver))
}

/// One parsed NOTIFY payload.
struct Notice<'a> {
    node: &'a str,
    stored: bool,
    salt: Vec<u8>,
    hashes: Vec<&'a str>,
}

fn parse_notice(payload: &str) -> Option<Notice<'_>> {
    let mut words = payload.split(' ');
    if words.next()? != "v1" {
        return None;
    }
    let node = words.next()?;
    let stored = words.next()? == "a";
    let salt_hex = words.next()?;
    let salt = (0..salt_hex.len() / 2)
        .map(|i| u8::from_str_radix(salt_hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<Vec<u8>>>()?;
    Some(Notice {
        node,
        stored,
        salt,
        hashes: words.collect(),
    })
}

/// Hears the other nodes' commits and tells the hub; reconnects when the connection breaks.
async fn listen_loop(
    config: tokio_postgres::Config,
    first: (Client, mpsc::UnboundedReceiver<String>),
    pool: Pool,
    cluster: Arc<dyn Cluster>,
    node: String,
) {
    let mut known: HashMap<ReceiveId, i64> = HashMap::new();
    let mut connection = Some(first);
    loop {
        let (client, mut notifications) = match connection.take() {
            Some(pair) => pair,
            None => match connect_listener(&config).await {
                Ok(pair) => {
                    // Commits may have been missed meanwhile: every subscriber looks again.
                    known.clear();
                    cluster.appended_elsewhere(&cluster.subscribed());
                    pair
                }
                Err(error) => {
                    tracing::warn!(%error, "postgres LISTEN reconnect failed");
                    tokio::time::sleep(Duration::from_millis(500)).await;
                    continue;
                }
            },
        };
        while let Some(first) = notifications.recv().await {
            let mut payloads = vec![first];
            while let Ok(more) = notifications.try_recv() {
                payloads.push(more);
            }
            let mut stored_elsewhere = false;
            for payload in &payloads {
                let Some(notice) = parse_notice(payload) else {
                    continue;
                };
                let own = notice.node == node;
                stored_elsewhere |= notice.stored && !own;
                if notice.hashes.is_empty() {
                    continue;
                }
                for receive_id in cluster.subscribed() {
                    if notice
                        .hashes
                        .contains(&announce_hash(&notice.salt, &receive_id).as_str())
                    {
                        if own {
                            cluster.announced_here(&receive_id);
                        } else {
                            cluster.subscribed_elsewhere(&receive_id);
                        }
                    }
                }
            }
            if stored_elsewhere
                && let Err(error) = moved_mailboxes(&pool, cluster.as_ref(), &mut known).await
            {
                tracing::warn!(%error, "re-reading subscribed mailboxes failed");
                cluster.appended_elsewhere(&cluster.subscribed());
            }
        }
        drop(client);
    }
}

/// The row ids a sweep's `select` finds (it takes a cutoff `$1` and a limit `$2`, and locks
/// with `FOR UPDATE SKIP LOCKED`, so rows another sweeper or a writer holds are left for later).
pub(super) async fn lockable_ids(
    transaction: &Transaction<'_>,
    select: &str,
    before: i64,
    limit: i64,
) -> Result<Vec<i64>, StoreError> {
    Ok(transaction
        .query(select, &[&before, &limit])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect())
}

/// Deletes the rows `delete_rows` finds by the owner ids `ids` (envelopes, chunks), then the
/// owners themselves (`delete_owners`: mailboxes, blobs); returns how many owners went.
pub(super) async fn delete_with_rows(
    transaction: &Transaction<'_>,
    delete_rows: &str,
    delete_owners: &str,
    ids: &[i64],
) -> Result<u64, StoreError> {
    transaction.execute(delete_rows, &[&ids]).await?;
    Ok(transaction.execute(delete_owners, &[&ids]).await?)
}

/// Tells the hub which subscribed mailboxes' `next_message_id` moved since last looked.
async fn moved_mailboxes(
    pool: &Pool,
    cluster: &dyn Cluster,
    known: &mut HashMap<ReceiveId, i64>,
) -> Result<(), StoreError> {
    let subscribed = cluster.subscribed();
    if subscribed.is_empty() {
        known.clear();
        return Ok(());
    }
    let client = pooled(pool).await?;
    let ids: Vec<&[u8]> = subscribed.iter().map(|r| r.as_bytes().as_slice()).collect();
    let rows = client
        .query(
            "SELECT receive_id, next_message_id FROM mailbox WHERE receive_id = ANY($1)",
            &[&ids],
        )
        .await?;
    let mut now: HashMap<ReceiveId, i64> = HashMap::with_capacity(rows.len());
    let mut moved = Vec::new();
    for row in rows {
        let Some(receive_id) = to_id::<32>(row.get(0)).map(ReceiveId) else {
            continue;
        };
        let next: i64 = row.get(1);
        if known.get(&receive_id) != Some(&next) {
            moved.push(receive_id);
        }
        now.insert(receive_id, next);
    }
    *known = now;
    cluster.appended_elsewhere(&moved);
    Ok(())
}

impl Store for PostgresStore {
    fn create_mailbox(&self, mailbox: NewMailbox) -> StoreFuture<'_, bool> {
        self.submit(Op::Create(mailbox), Replier::Bool)
    }

    fn auth_key(&self, receive_id: ReceiveId) -> StoreFuture<'_, Option<AuthPublicKey>> {
        self.read(move |client| async move {
            let statement = client
                .prepare_cached("SELECT auth_key FROM mailbox WHERE receive_id = $1")
                .await?;
            let row = client
                .query_opt(&statement, &[&receive_id.as_bytes().as_slice()])
                .await?;
            Ok(row
                .and_then(|row| to_id::<32>(row.get(0)))
                .map(AuthPublicKey))
        })
    }

    fn send_target(&self, send_id: SendId) -> StoreFuture<'_, Option<SendTarget>> {
        self.read(move |client| async move {
            let statement = client
                .prepare_cached(
                    "SELECT receive_id, send_secret_hash, sender_key FROM mailbox
                     WHERE send_id = $1",
                )
                .await?;
            let row = client
                .query_opt(&statement, &[&send_id.as_bytes().as_slice()])
                .await?;
            Ok(row.and_then(|row| SendTarget::from_row(row.get(0), row.get(1), row.get(2))))
        })
    }

    fn append(
        &self,
        receive_id: ReceiveId,
        expected_sender_key: Option<AuthPublicKey>,
        envelope: Arc<[u8]>,
        now: u64,
        quota: Quota,
    ) -> StoreFuture<'_, AppendOutcome> {
        let append = PendingAppend {
            receive_id,
            expected_sender_key,
            envelope,
            now,
            quota,
        };
        self.submit(Op::Append(append), Replier::Append)
    }

    fn fetch(
        &self,
        receive_id: ReceiveId,
        after: MessageId,
        limit: usize,
    ) -> StoreFuture<'_, Vec<StoredEnvelope>> {
        self.read(move |client| async move {
            let statement = client
                .prepare_cached(
                    "SELECT e.message_id, e.received_at, e.body FROM envelope e
                     WHERE e.mid = (SELECT mid FROM mailbox WHERE receive_id = $1)
                       AND e.message_id > $2
                     ORDER BY e.message_id LIMIT $3",
                )
                .await?;
            let rows = client
                .query(
                    &statement,
                    &[
                        &receive_id.as_bytes().as_slice(),
                        &as_i64(after.0),
                        &i64::try_from(limit).unwrap_or(i64::MAX),
                    ],
                )
                .await?;
            Ok(rows
                .into_iter()
                .map(|row| StoredEnvelope::from_row(row.get(0), row.get(1), row.get(2)))
                .collect())
        })
    }

    fn ack(&self, receive_id: ReceiveId, message_id: MessageId, now: u64) -> StoreFuture<'_, ()> {
        self.submit(Op::Ack(receive_id, vec![message_id], now), Replier::Unit)
    }

    fn ack_many(
        &self,
        receive_id: ReceiveId,
        message_ids: Vec<MessageId>,
        now: u64,
    ) -> StoreFuture<'_, ()> {
        self.submit(Op::Ack(receive_id, message_ids, now), Replier::Unit)
    }

    fn secure(
        &self,
        receive_id: ReceiveId,
        sender_key: AuthPublicKey,
        now: u64,
    ) -> StoreFuture<'_, SecureOutcome> {
        self.submit(Op::Secure(receive_id, sender_key, now), Replier::Secure)
    }

    fn delete_mailbox(&self, receive_id: ReceiveId) -> StoreFuture<'_, ()> {
        self.submit(Op::Delete(receive_id), Replier::Unit)
    }

    fn touch(&self, receive_id: ReceiveId, now: u64) -> StoreFuture<'_, ()> {
        self.submit(Op::Touch(receive_id, now), Replier::Unit)
    }

    fn expire(&self, envelopes_before: u64, mailboxes_before: u64) -> StoreFuture<'_, Expired> {
        self.read(move |mut client| async move {
            let transaction = client.transaction().await?;
            // Idle mailboxes this node can lock now (another node's sweeper or a writer holding
            // one means it is being handled or used: skip it).
            let idle = lockable_ids(
                &transaction,
                "SELECT mid FROM mailbox WHERE last_used < $1 LIMIT $2 FOR UPDATE SKIP LOCKED",
                as_i64(mailboxes_before),
                SWEEP_MAILBOXES,
            )
            .await?;
            let mailboxes = delete_with_rows(
                &transaction,
                "DELETE FROM envelope WHERE mid = ANY($1)",
                "DELETE FROM mailbox WHERE mid = ANY($1)",
                &idle,
            )
            .await?;
            // Mailboxes holding old envelopes, again only those lockable now.
            let old = lockable_ids(
                &transaction,
                "SELECT mid FROM mailbox WHERE mid IN
                   (SELECT DISTINCT mid FROM envelope WHERE received_at < $1 LIMIT $2)
                 FOR UPDATE SKIP LOCKED",
                as_i64(envelopes_before),
                SWEEP_MAILBOXES,
            )
            .await?;
            let row = transaction
                .query_one(
                    "WITH d AS (DELETE FROM envelope WHERE mid = ANY($1) AND received_at < $2
                                RETURNING mid, octet_length(body) AS length),
                     s AS (SELECT mid, count(*) AS n, sum(length) AS b FROM d GROUP BY mid),
                     u AS (UPDATE mailbox SET envelope_count = envelope_count - s.n,
                             envelope_bytes = envelope_bytes - s.b
                           FROM s WHERE mailbox.mid = s.mid RETURNING s.n)
                     SELECT coalesce(sum(n), 0)::bigint FROM u",
                    &[&old, &as_i64(envelopes_before)],
                )
                .await?;
            let envelopes: i64 = row.get(0);
            transaction.commit().await?;
            Ok(Expired {
                envelopes: as_u64(envelopes),
                mailboxes,
            })
        })
    }

    fn close(&self) -> StoreFuture<'_, ()> {
        // Dropping the only sender lets the writer drain what is queued, commit and exit.
        drop(take_slot(&self.writer));
        let writer = take_slot(&self.writer_task);
        let listener = take_slot(&self.listener_task);
        Box::pin(async move {
            if let Some(listener) = listener {
                listener.abort();
            }
            if let Some(writer) = writer {
                writer.await.map_err(|_| StoreError::WriterGone)?;
            }
            self.blob_writer.close().await;
            self.pool.close();
            Ok(())
        })
    }
}
