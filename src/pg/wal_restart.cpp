/*-------------------------------------------------------------------------
 *
 * wal_restart.cpp
 *		Restarting a data directory whose WAL is encrypted under a key that
 *		died with the previous instance.
 *
 * The next instance cannot read the old WAL, yet startup must read the
 * shutdown checkpoint and continue writing after it, a caught-up standby
 * asks for the checkpoint's segment again from its start, and HA tools
 * (Patroni, pg_rewind) read the end of a stopped instance's WAL with stock
 * tools that have no key. So a clean shutdown is sealed in three steps:
 *
 *  1. a background worker, told to stop, waits until it is the last process
 *     that can write WAL and switches to a new segment, so the shutdown
 *     checkpoint becomes the first record of a fresh segment;
 *  2. the postmaster, exiting after the checkpoint with the key still alive,
 *     rewrites that segment in plaintext: the page header and the
 *     checkpoint record (nothing pg_control does not already hold), zeros
 *     after. pg_waldump and pg_rewind read it as they read any WAL;
 *  3. the next postmaster checks that segment against pg_control with
 *     PostgreSQL's own definitions (page header, record, CRC) before the
 *     startup process runs, removes the previous instance's other segments,
 *     which nothing can read any more, and encrypts the sealed one under
 *     its own key.
 *
 * A single-user backend (postgres --single, which Patroni and pg_rewind run
 * for crash recovery) is its own postmaster: it seals before its own
 * shutdown checkpoint and leaves it readable as it exits, the same way.
 *
 * A standby instead drops the previous instance's segments and fetches them
 * again from its primary. Anything else (an unclean end, a shutdown that was
 * not sealed) is refused with a FATAL that says what may be lost and the way
 * out.
 *
 *-------------------------------------------------------------------------
 */
#include "pg/pg_includes.hpp"

extern "C" {
#include "access/xact.h"
#include "access/xloginsert.h"
#include "access/xlogrecord.h"
#include "port/pg_crc32c.h"
#include "storage/fd.h"
#include "postmaster/bgworker.h"
#include "postmaster/postmaster.h"
#include "replication/walsender.h"
#include "replication/walsender_private.h"
#include "storage/latch.h"
#include "storage/procarray.h"
#include "utils/wait_event.h"
}

#include "pg/extension.hpp"

extern "C" {
PGDLLEXPORT void ephemeral_crypt_wal_sealer_main(Datum argument);
}

namespace {

/*---- Function declarations ----*/

void request_stop(SIGNAL_ARGS);
int other_wal_writers();
void seal_wal_for_restart();
void seal_single_user_exit(int code, Datum);
void arm_single_user_seal(XactEvent event, void*);
void leave_checkpoint_readable(int code, Datum);
uint32 lsn_high(XLogRecPtr lsn);
uint32 lsn_low(XLogRecPtr lsn);
bool file_exists(const char* path);
void checkpoint_segment_path(const ControlFileData* control, char* name, char* path);
bool sealed_checkpoint_matches(const char* path, const ControlFileData* control);
void warn_unarchived_foreign_wal(const char* sealed_name);
void refuse(int segments, const char* old_key, const ControlFileData* control, bool clean);
int remove_foreign_wal();

/*---- The sealer: a background worker that runs at shutdown ----*/

volatile sig_atomic_t stop_requested = false;

void request_stop(SIGNAL_ARGS) {
    const int saved_errno = errno;
    stop_requested = true;
    SetLatch(MyLatch);
    errno = saved_errno;
}

// Processes other than this one that may still insert WAL: everything in the
// proc array except walsenders, which only read it.
int other_wal_writers() {
    int walsenders = 0;
    if (WalSndCtl != nullptr) {
        for (int i = 0; i < max_wal_senders; ++i) {
            if (WalSndCtl->walsnds[i].pid != 0) {
                ++walsenders;
            }
        }
    }
    return CountDBBackends(InvalidOid) - 1 - walsenders;
}

void seal_wal_for_restart() {
    if (RecoveryInProgress()) {
        return;
    }
    // Backends and workers exit concurrently with us; give them time.
    for (int waited_ms = 0; other_wal_writers() > 0 && waited_ms < 30000; waited_ms += 10) {
        pg_usleep(10000L);
    }
    if (other_wal_writers() > 0) {
        ereport(LOG, (errcode(ERRCODE_OBJECT_IN_USE),
                      errmsg("ephemeral_crypt: other processes still write WAL; this shutdown "
                             "is not sealed for a restart")));
        return;
    }
    // A record first, so the switch below always starts a new segment even if
    // the insert position sits on a segment boundary. Both are unimportant
    // records, so they do not wake the bgwriter into logging a snapshot.
    char marker = 'E';
    XLogBeginInsert();
    XLogSetRecordFlags(XLOG_MARK_UNIMPORTANT);
    XLogRegisterData(&marker, sizeof(marker));
    XLogInsert(RM_XLOG_ID, XLOG_NOOP);
    const XLogRecPtr end = RequestXLogSwitch(true);
    XLogFlush(end);
}

/*---- Single-user mode: the backend seals its own shutdown ----*/

// A single-user backend writes its shutdown checkpoint from a
// before_shmem_exit callback that InitPostgres registers after StartupXLOG.
// Those callbacks run in reverse order, so the seal must be registered
// later still: at the end of the first transaction, which InitPostgres
// itself runs after that registration.
void arm_single_user_seal(XactEvent event, void*) {
    static bool armed = false;
    if (armed || event != XACT_EVENT_COMMIT) {
        return;
    }
    armed = true;
    before_shmem_exit(seal_single_user_exit, 0);
}

void seal_single_user_exit(int, Datum) {
    // The only process there is: nothing else writes WAL.
    seal_wal_for_restart();
}

/*---- The postmaster's exit: leaving the checkpoint readable ----*/

// Runs in the postmaster, or in a single-user backend; children of the
// postmaster do not inherit on_proc_exit callbacks.
void leave_checkpoint_readable(int code, Datum) {
    if (IsUnderPostmaster) {
        return;
    }
    // Shared memory is already detached when exit callbacks run.
    ec_engine_detach_counters();
    if (code != 0) {
        return;
    }
    bool crc_ok = false;
    ControlFileData* control = get_controlfile(DataDir, &crc_ok);
    if (!crc_ok || control->state != DB_SHUTDOWNED) {
        return;
    }
    const uint32 segment_bytes = control->xlog_seg_size;
    const uint64 offset = control->checkPoint % segment_bytes;
    if (offset != SizeOfXLogLongPHD) {
        ereport(LOG,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("ephemeral_crypt: the shutdown checkpoint is not the first record of its "
                        "segment; the next start of this data directory will be refused")));
        return;
    }
    char name[MAXPGPATH];
    char path[MAXPGPATH];
    checkpoint_segment_path(control, name, path);
    ec_error error;
    if (ec_engine_leave_checkpoint_readable(path, offset, segment_bytes, &error) != EC_OK) {
        ec_report_engine_error(LOG, ERRCODE_INTERNAL_ERROR,
                               "could not leave the shutdown checkpoint readable", &error, nullptr);
    }
}

/*---- The next start: rebuilding, removing or refusing ----*/

// The WAL segment that holds the latest checkpoint record: its file name and
// its path relative to the data directory.
void checkpoint_segment_path(const ControlFileData* control, char* name, char* path) {
    XLogSegNo segment;
    XLByteToSeg(control->checkPoint, segment, control->xlog_seg_size);
    XLogFileName(name, control->checkPointCopy.ThisTimeLineID, segment, control->xlog_seg_size);
    snprintf(path, MAXPGPATH, "pg_wal/%s", name);
}

// LSN_FORMAT_ARGS relies on a C-only builtin, so LSNs are split by hand.
uint32 lsn_high(XLogRecPtr lsn) {
    return static_cast<uint32>(lsn >> 32);
}
uint32 lsn_low(XLogRecPtr lsn) {
    return static_cast<uint32>(lsn);
}

bool file_exists(const char* path) {
    return access(path, F_OK) == 0;
}

// Whether the plaintext segment at `path` is what a clean shutdown sealed:
// a long page header of this cluster, timeline and segment, and as its first
// record the shutdown checkpoint pg_control names, with an intact CRC.
bool sealed_checkpoint_matches(const char* path, const ControlFileData* control) {
    union {
        uint8 bytes[XLOG_BLCKSZ];
        XLogLongPageHeaderData page;  // for the alignment of what is read
    } buffer;
    const size_t got = ec_engine_read_plaintext_segment_start(path, buffer.bytes, XLOG_BLCKSZ);
    if (got < SizeOfXLogLongPHD + SizeOfXLogRecord) {
        return false;
    }
    const XLogLongPageHeaderData& page = buffer.page;
    if (page.std.xlp_magic != XLOG_PAGE_MAGIC || (page.std.xlp_info & XLP_LONG_HEADER) == 0 ||
        page.std.xlp_tli != control->checkPointCopy.ThisTimeLineID ||
        page.std.xlp_pageaddr != control->checkPoint - SizeOfXLogLongPHD ||
        page.xlp_sysid != control->system_identifier ||
        page.xlp_seg_size != control->xlog_seg_size) {
        return false;
    }
    const XLogRecord* record =
        reinterpret_cast<const XLogRecord*>(buffer.bytes + SizeOfXLogLongPHD);
    if (record->xl_rmid != RM_XLOG_ID ||
        (record->xl_info & ~XLR_INFO_MASK) != XLOG_CHECKPOINT_SHUTDOWN ||
        record->xl_tot_len < SizeOfXLogRecord || SizeOfXLogLongPHD + record->xl_tot_len > got) {
        return false;
    }
    pg_crc32c crc;
    INIT_CRC32C(crc);
    COMP_CRC32C(crc, reinterpret_cast<const char*>(record) + SizeOfXLogRecord,
                record->xl_tot_len - SizeOfXLogRecord);
    COMP_CRC32C(crc, reinterpret_cast<const char*>(record), offsetof(XLogRecord, xl_crc));
    FIN_CRC32C(crc);
    return EQ_CRC32C(crc, record->xl_crc);
}

// Segments the previous instance had not archived yet are gone with its
// key; say so, since the archive now has a gap a base backup must close.
void warn_unarchived_foreign_wal(const char* sealed_name) {
    DIR* dir = AllocateDir(XLOGDIR "/archive_status");
    if (dir == nullptr) {
        return;
    }
    int missing = 0;
    char first[MAXFNAMELEN] = "";
    char last[MAXFNAMELEN] = "";
    struct dirent* entry;
    while ((entry = ReadDir(dir, XLOGDIR "/archive_status")) != nullptr) {
        const size_t length = strlen(entry->d_name);
        if (length != XLOG_FNAME_LEN + strlen(".ready") ||
            strcmp(entry->d_name + XLOG_FNAME_LEN, ".ready") != 0 ||
            strncmp(entry->d_name, sealed_name != nullptr ? sealed_name : "", XLOG_FNAME_LEN) ==
                0) {
            continue;
        }
        char segment[MAXFNAMELEN];
        snprintf(segment, sizeof(segment), "%.*s", XLOG_FNAME_LEN, entry->d_name);
        if (missing == 0 || strcmp(segment, first) < 0) {
            snprintf(first, sizeof(first), "%s", segment);
        }
        if (missing == 0 || strcmp(segment, last) > 0) {
            snprintf(last, sizeof(last), "%s", segment);
        }
        ++missing;
    }
    FreeDir(dir);
    if (missing > 0) {
        ereport(WARNING,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("ephemeral_crypt: %d WAL segment(s) of the previous instance were never "
                        "archived and cannot be any more (%s to %s)",
                        missing, first, last),
                 errdetail("They are encrypted under a key that died with that instance, so "
                           "archive_command cannot be given their plaintext."),
                 errhint("The archive has a gap there: take a new base backup before relying on "
                         "it for point-in-time recovery. Stop the server only once "
                         "pg_stat_archiver shows every segment archived.")));
    }
}

const char* const way_out =
    "Promote a standby or re-provision this instance from one (pg_basebackup), or restore a "
    "base backup and let it recover from the archive. Keep this data directory only for "
    "investigation: its encrypted WAL cannot be read by any instance.";

void refuse(int segments, const char* old_key, const ControlFileData* control, bool clean) {
    const char* when = timestamptz_to_str(time_t_to_timestamptz(control->time));
    if (clean) {
        ereport(FATAL,
                (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                 errmsg("ephemeral_crypt: the local WAL belongs to a previous instance whose key "
                        "is gone"),
                 errdetail("%d WAL segment(s) in pg_wal were encrypted under instance key %s. "
                           "The server was shut down cleanly at %s (checkpoint at " EC_LSN_FORMAT
                           "), but "
                           "that shutdown was not sealed for a restart (its checkpoint's segment "
                           "was not left readable), so the checkpoint record cannot be read.",
                           segments, old_key[0] ? old_key : "(unknown)", when,
                           lsn_high(control->checkPoint), lsn_low(control->checkPoint)),
                 errhint("%s", way_out)));
    }
    const DBState state = control->state;
    ereport(
        FATAL,
        (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
         errmsg("ephemeral_crypt: the local WAL belongs to a previous instance whose key is "
                "gone, and that instance did not shut down cleanly"),
         errdetail(
             "%d WAL segment(s) in pg_wal were encrypted under instance key %s, which "
             "died with that instance (state \"%s\" at %s). Transactions committed "
             "after the last checkpoint (redo at " EC_LSN_FORMAT ") were recorded only in that WAL "
             "and may be missing locally.",
             segments, old_key[0] ? old_key : "(unknown)",
             state == DB_IN_PRODUCTION         ? "in production"
             : state == DB_IN_ARCHIVE_RECOVERY ? "in archive recovery"
             : state == DB_IN_CRASH_RECOVERY   ? "in crash recovery"
                                               : "shutting down",
             when, lsn_high(control->checkPointCopy.redo), lsn_low(control->checkPointCopy.redo)),
         errhint("%s", way_out)));
}

int remove_foreign_wal() {
    int removed = 0;
    ec_error error;
    if (ec_engine_remove_foreign_wal(&removed, &error) != EC_OK) {
        ec_report_engine_error(FATAL, ERRCODE_INTERNAL_ERROR, nullptr, &error, nullptr);
    }
    return removed;
}

}  // namespace

/*---- Entry points ----*/

void ephemeral_crypt_wal_sealer_main(Datum) {
    pqsignal(SIGTERM, request_stop);
    BackgroundWorkerUnblockSignals();
    while (!stop_requested) {
        const int rc =
            WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1L, PG_WAIT_EXTENSION);
        (void)rc;
        ResetLatch(MyLatch);
    }
    seal_wal_for_restart();
    proc_exit(0);
}

void ec_wal_restart_register() {
    on_proc_exit(leave_checkpoint_readable, 0);
    if (!IsPostmasterEnvironment) {
        RegisterXactCallback(arm_single_user_seal, nullptr);  // single-user mode
        return;
    }
    ec_register_worker("ephemeral_crypt_wal_sealer_main", "ephemeral_crypt WAL sealer",
                       EcWorkerStart::RecoveryFinished);
}

void ec_wal_restart_prepare() {
    char old_key[EC_KEY_ID_BUFFER];
    int segments = 0;
    ec_error error;
    // A pg_wal that cannot be listed counts none; the startup process then
    // meets the files itself and says what is wrong with them.
    (void)ec_engine_find_foreign_wal(&segments, old_key, &error);
    bool crc_ok = false;
    ControlFileData* control = get_controlfile(DataDir, &crc_ok);
    char name[MAXPGPATH];
    char path[MAXPGPATH];
    checkpoint_segment_path(control, name, path);
    const bool clean = crc_ok && control->state == DB_SHUTDOWNED;
    if (segments == 0) {
        // A sealed stop removed every encrypted segment; what it could not
        // archive is named here.
        if (clean && sealed_checkpoint_matches(path, control)) {
            warn_unarchived_foreign_wal(name);
            ereport(LOG,
                    (errcode(ERRCODE_SUCCESSFUL_COMPLETION),
                     errmsg("ephemeral_crypt: continuing from the sealed WAL segment %s "
                            "(shutdown checkpoint at " EC_LSN_FORMAT ")",
                            name, lsn_high(control->checkPoint), lsn_low(control->checkPoint))));
        }
        return;
    }
    // A primary that did not stop cleanly, started as a standby (as an HA
    // manager does after a failover), would need its own WAL for crash
    // recovery first: refused like any unclean end, WAL kept.
    const bool primary_crashed =
        crc_ok && (control->state == DB_IN_PRODUCTION || control->state == DB_SHUTDOWNING ||
                   control->state == DB_IN_CRASH_RECOVERY);
    if (primary_crashed) {
        refuse(segments, old_key, control, false);
    }

    // A standby (or an archive recovery) fetches WAL again from elsewhere.
    if (file_exists(STANDBY_SIGNAL_FILE) || file_exists(RECOVERY_SIGNAL_FILE)) {
        const int removed = remove_foreign_wal();
        const XLogRecPtr redo = crc_ok ? control->checkPointCopy.redo : InvalidXLogRecPtr;
        ereport(LOG,
                (errcode(ERRCODE_SUCCESSFUL_COMPLETION),
                 errmsg("ephemeral_crypt: removed %d WAL segment(s) encrypted under the previous "
                        "instance's key %s; recovery fetches WAL again from " EC_LSN_FORMAT
                        " (the last "
                        "restartpoint) from the primary or the archive",
                        removed, old_key[0] ? old_key : "(unknown)", lsn_high(redo), lsn_low(redo)),
                 errhint("The primary must still hold that WAL: a replication slot keeps WAL "
                         "only from what this standby had flushed, so keep wal_keep_size large "
                         "enough or give the standby a restore_command. If the primary reports "
                         "\"requested WAL segment has already been removed\", rebuild this "
                         "standby from the primary.")));
        return;
    }

    if (!clean) {
        refuse(segments, old_key, control, false);
    }
    if (!sealed_checkpoint_matches(path, control)) {
        refuse(segments, old_key, control, true);
    }
    warn_unarchived_foreign_wal(name);
    // The sealed segment is plaintext: encrypt_existing_wal() encrypts it
    // under the new key next, and the server continues right after it.
    const int removed = remove_foreign_wal();
    ereport(LOG, (errcode(ERRCODE_SUCCESSFUL_COMPLETION),
                  errmsg("ephemeral_crypt: continuing from the sealed WAL segment %s (shutdown "
                         "checkpoint at " EC_LSN_FORMAT "); removed %d other segment(s) of the "
                         "previous instance (key %s)",
                         name, lsn_high(control->checkPoint), lsn_low(control->checkPoint), removed,
                         old_key[0] ? old_key : "(unknown)")));
}
