//! SAVE, BGSAVE, LASTSAVE and INFO's persistence section, over [`crate::persist`].

use std::sync::atomic::Ordering::Relaxed;

use bytes::Bytes;

use super::{is, CmdError, CmdResult, Ctx};
use crate::persist::{self, SaveError};

pub fn save(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    if ctx.shared.persist.bgsave_in_progress.load(Relaxed) {
        return Err(CmdError::Msg("ERR Background save already in progress"));
    }
    match persist::write_snapshot(ctx.shared) {
        Ok(_) => {
            ctx.out.ok();
            Ok(())
        }
        Err(SaveError::Busy) => Err(CmdError::Msg("ERR Background save already in progress")),
        Err(SaveError::Io(_)) => Err(CmdError::Msg("ERR")),
    }
}

/// `BGSAVE [SCHEDULE]`.
pub fn bgsave(ctx: &mut Ctx<'_>, args: &[Bytes]) -> CmdResult {
    let schedule = match args.get(1) {
        None => false,
        Some(a) if is(a, "schedule") && args.len() == 2 => true,
        Some(_) => return Err(CmdError::Syntax),
    };
    let p = &ctx.shared.persist;
    if p.bgsave_in_progress.load(Relaxed) {
        if schedule {
            p.scheduled.store(true, Relaxed);
            ctx.out.simple("Background saving scheduled");
            return Ok(());
        }
        return Err(CmdError::Msg("ERR Background save already in progress"));
    }
    match persist::start_bgsave(ctx.shared) {
        Ok(()) => ctx.out.simple("Background saving started"),
        Err(SaveError::Busy) if schedule => {
            p.scheduled.store(true, Relaxed);
            ctx.out.simple("Background saving scheduled");
        }
        Err(SaveError::Busy) => {
            return Err(CmdError::Msg("ERR Background save already in progress"))
        }
        Err(SaveError::Io(_)) => return Err(CmdError::Msg("ERR")),
    }
    Ok(())
}

pub fn lastsave(ctx: &mut Ctx<'_>, _args: &[Bytes]) -> CmdResult {
    ctx.out
        .int(ctx.shared.persist.last_save.load(Relaxed) as i64);
    Ok(())
}

/// INFO's `# Persistence` section.
pub fn info_section(ctx: &Ctx<'_>) -> String {
    let p = &ctx.shared.persist;
    let in_progress = p.bgsave_in_progress.load(Relaxed);
    let current = if in_progress {
        (ctx.now.saturating_sub(p.bgsave_started_ms.load(Relaxed)) / 1000) as i64
    } else {
        -1
    };
    format!(
        "# Persistence\r\nloading:0\r\nasync_loading:0\r\ncurrent_cow_peak:0\r\ncurrent_cow_size:0\r\ncurrent_cow_size_age:0\r\ncurrent_fork_perc:0.00\r\ncurrent_save_keys_processed:0\r\ncurrent_save_keys_total:0\r\nrdb_changes_since_last_save:{}\r\nrdb_bgsave_in_progress:{}\r\nrdb_last_save_time:{}\r\nrdb_last_bgsave_status:{}\r\nrdb_last_bgsave_time_sec:{}\r\nrdb_current_bgsave_time_sec:{}\r\nrdb_saves:{}\r\nrdb_last_cow_size:0\r\nrdb_last_load_keys_expired:{}\r\nrdb_last_load_keys_loaded:{}\r\naof_enabled:0\r\naof_rewrite_in_progress:0\r\naof_rewrite_scheduled:0\r\naof_last_rewrite_time_sec:-1\r\naof_current_rewrite_time_sec:-1\r\naof_last_bgrewrite_status:ok\r\naof_rewrites:0\r\naof_rewrites_consecutive_failures:0\r\naof_last_write_status:ok\r\naof_last_cow_size:0\r\nmodule_fork_in_progress:0\r\nmodule_fork_last_cow_size:0\r\n",
        persist::changes_since_save(ctx.shared),
        u8::from(in_progress),
        p.last_save.load(Relaxed),
        if p.last_bgsave_ok.load(Relaxed) { "ok" } else { "err" },
        p.last_bgsave_secs.load(Relaxed),
        current,
        p.saves.load(Relaxed),
        p.loaded_expired.load(Relaxed),
        p.loaded_keys.load(Relaxed),
    )
}
