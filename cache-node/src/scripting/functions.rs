//! FUNCTION libraries: `#!lua name=lib` code that calls `redis.register_function` when loaded.
//!
//! The node keeps each library's code and what it registered; every worker thread loads a
//! library into its own interpreter the first time it runs one of its functions there (and
//! again after the library changed), so FCALL never recompiles on a cache hit.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use hashbrown::HashMap;
use mlua::{Function, Value, Variadic};

use super::engine::{ok, Engine};
use super::{flag, Invocation};
use crate::cmd::Ctx;

/// One registered function.
#[derive(Clone)]
pub struct FunctionInfo {
    pub name: String,
    pub description: Option<String>,
    pub flags: u32,
}

/// One library as FUNCTION LIST shows it.
pub struct Library {
    pub name: String,
    /// The whole payload, shebang included (FUNCTION LIST WITHCODE).
    pub code: Bytes,
    pub functions: Vec<FunctionInfo>,
    /// Distinguishes versions of a library with the same name (FUNCTION LOAD REPLACE).
    pub version: u64,
}

#[derive(Default)]
struct Libraries {
    libraries: BTreeMap<String, Arc<Library>>,
    /// Function name (lower case: names are case-insensitive, as Redis's dict) → library.
    functions: HashMap<String, String>,
}

/// The node's libraries.
#[derive(Default)]
pub struct Registry {
    inner: Mutex<Libraries>,
    versions: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// What `redis.register_function` collects during a load.
struct Registered {
    info: FunctionInfo,
    callback: Function,
}

thread_local! {
    static REGISTERING: RefCell<Option<Vec<Registered>>> = const { RefCell::new(None) };
    static FN_ENGINE: RefCell<Option<FnLocal>> = const { RefCell::new(None) };
}

struct FnLocal {
    engine: Engine,
    /// What library code sees as its globals: a proxy whose reads go to `load_api` while the
    /// library loads and to the engine's globals when its functions run, as Redis switches.
    lib_env: mlua::Table,
    lib_meta: mlua::Table,
    load_api: mlua::Table,
    /// Library name → (version, its functions).
    loaded: HashMap<String, (u64, HashMap<String, Function>)>,
}

fn with_engine<R>(f: impl FnOnce(&mut FnLocal) -> R) -> Result<R, String> {
    FN_ENGINE.with(|cell| {
        let mut slot = cell
            .try_borrow_mut()
            .map_err(|_| "ERR function engine is busy".to_string())?;
        if slot.is_none() {
            let fail = |e: mlua::Error| format!("ERR Lua engine failed: {e}");
            let engine = Engine::new().map_err(fail)?;
            let (lib_env, lib_meta, load_api) = library_env(&engine).map_err(fail)?;
            *slot = Some(FnLocal {
                engine,
                lib_env,
                lib_meta,
                load_api,
                loaded: HashMap::new(),
            });
        }
        match slot.as_mut() {
            Some(local) => Ok(f(local)),
            None => Err("ERR Lua engine failed".to_string()),
        }
    })
}

fn valid_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

const BAD_NAME: &str = "Library names can only contain letters, numbers, or underscores(_) and must be at least one character long";

/// The library environment: (env, its metatable, the load-time API). While a library
/// loads it sees only `redis.register_function`, `redis.log` and the version, as in Redis.
fn library_env(engine: &Engine) -> mlua::Result<(mlua::Table, mlua::Table, mlua::Table)> {
    let lua = &engine.lua;
    let redis = lua.create_table()?;
    redis.raw_set("register_function", register_function(lua)?)?;
    for name in [
        "log",
        "LOG_DEBUG",
        "LOG_VERBOSE",
        "LOG_NOTICE",
        "LOG_WARNING",
        "REDIS_VERSION",
        "REDIS_VERSION_NUM",
    ] {
        redis.raw_set(name, engine.redis.raw_get::<Value>(name)?)?;
    }
    let missing = engine
        .globals
        .metatable()
        .and_then(|m| m.raw_get::<Value>("__index").ok());
    let missing_meta = lua.create_table()?;
    missing_meta.raw_set("__index", missing.unwrap_or(Value::Nil))?;
    redis.set_metatable(Some(missing_meta.clone()));
    let load_api = lua.create_table()?;
    load_api.raw_set("redis", super::engine::readonly_proxy(lua, &redis, false)?)?;
    load_api.set_metatable(Some(missing_meta));
    let env = lua.create_table()?;
    let meta = lua.create_table()?;
    meta.raw_set("__index", engine.globals.clone())?;
    let env_meta: mlua::Table = engine
        .env
        .metatable()
        .ok_or_else(|| mlua::Error::RuntimeError("sandbox without metatable".into()))?;
    meta.raw_set("__newindex", env_meta.raw_get::<Value>("__newindex")?)?;
    meta.raw_set("__metatable", false)?;
    env.set_metatable(Some(meta.clone()));
    Ok((env, meta, load_api))
}

/// `redis.register_function(name, callback)` or `redis.register_function{...}`.
fn register_function(lua: &mlua::Lua) -> mlua::Result<Function> {
    let register = lua.create_function(|lua, args: Variadic<Value>| {
        let registering = REGISTERING.with(|r| r.borrow().is_some());
        if !registering {
            return super::api::raise_table(
                lua,
                "redis.register_function can only be called on FUNCTION LOAD command",
            );
        }
        let parsed = match args.len() {
            1 => named_args(&args[0]),
            2 => match (&args[0], &args[1]) {
                (Value::String(n), Value::Function(f)) => {
                    Ok((n.to_string_lossy(), None, f.clone(), 0))
                }
                (Value::String(_), _) => {
                    Err("second argument to redis.register_function must be a function")
                }
                _ => Err("first argument to redis.register_function must be a string"),
            },
            _ => Err("wrong number of arguments to redis.register_function"),
        };
        let (name, description, callback, flags) = match parsed {
            Ok(p) => p,
            Err(e) => return super::api::raise_table(lua, e),
        };
        if !valid_name(&name) {
            return super::api::raise_table(lua, BAD_NAME);
        }
        let duplicate = REGISTERING.with(|r| {
            r.borrow()
                .as_ref()
                .is_some_and(|v| v.iter().any(|f| f.info.name.eq_ignore_ascii_case(&name)))
        });
        if duplicate {
            return super::api::raise_table(lua, "Function already exists in the library");
        }
        REGISTERING.with(|r| {
            if let Some(v) = r.borrow_mut().as_mut() {
                v.push(Registered {
                    info: FunctionInfo {
                        name,
                        description,
                        flags,
                    },
                    callback,
                });
            }
        });
        ok(lua, Value::Nil)
    })?;
    Ok(register)
}

type Named = (String, Option<String>, Function, u32);

fn named_args(v: &Value) -> Result<Named, &'static str> {
    let Value::Table(t) = v else {
        return Err("calling redis.register_function with a single argument is only applicable to Lua table (representing named arguments).");
    };
    let (mut name, mut desc, mut callback, mut flags) = (None, None, None, 0);
    for pair in t.pairs::<Value, Value>() {
        let Ok((k, v)) = pair else {
            return Err("unknown argument given to redis.register_function");
        };
        let Value::String(k) = k else {
            return Err("named argument key given to redis.register_function is not a string");
        };
        let k = k.to_string_lossy().to_ascii_lowercase();
        match k.as_str() {
            "function_name" => {
                match v {
                    Value::String(s) => name = Some(s.to_string_lossy()),
                    _ => return Err(
                        "function_name argument given to redis.register_function must be a string",
                    ),
                }
            }
            "description" => {
                match v {
                    Value::String(s) => desc = Some(s.to_string_lossy()),
                    _ => return Err(
                        "description argument given to redis.register_function must be a string",
                    ),
                }
            }
            "callback" => match v {
                Value::Function(f) => callback = Some(f),
                _ => {
                    return Err(
                        "callback argument given to redis.register_function must be a function",
                    )
                }
            },
            "flags" => {
                let Value::Table(list) = v else {
                    return Err("flags argument to redis.register_function must be a table representing function flags");
                };
                for item in list.sequence_values::<Value>() {
                    let Ok(Value::String(s)) = item else {
                        return Err("unknown flag given");
                    };
                    let s = s.to_string_lossy();
                    match flag::NAMES.iter().find(|(_, n)| *n == s) {
                        Some((bit, _)) => flags |= bit,
                        None => return Err("unknown flag given"),
                    }
                }
            }
            _ => return Err("unknown argument given to redis.register_function"),
        }
    }
    let Some(name) = name else {
        return Err("redis.register_function must get a function name argument");
    };
    let Some(callback) = callback else {
        return Err("redis.register_function must get a callback argument");
    };
    Ok((name, desc, callback, flags))
}

/// Splits `#!lua name=lib\n...`: (engine, library name, code after the shebang line).
fn metadata(payload: &[u8]) -> Result<(String, String, &[u8]), String> {
    if !payload.starts_with(b"#!") {
        return Err("Missing library metadata".into());
    }
    let Some(end) = payload.iter().position(|&c| c == b'\n') else {
        return Err("Invalid library metadata".into());
    };
    let line = String::from_utf8_lossy(&payload[..end]).to_string();
    let parts = super::split_args(&line).unwrap_or_default();
    let mut parts = parts.iter().map(String::as_str);
    let Some(engine) = parts.next() else {
        return Err("Invalid library metadata".into());
    };
    let engine = engine.get(2..).unwrap_or("").to_string();
    let mut name = None;
    for part in parts {
        if part.len() >= 5 && part[..5].eq_ignore_ascii_case("name=") {
            if name.is_some() {
                return Err(
                    "Invalid metadata value, name argument was given multiple times".into(),
                );
            }
            name = Some(part[5..].to_string());
            continue;
        }
        return Err(format!("Invalid metadata value given: {part}"));
    }
    let Some(name) = name else {
        return Err("Library name was not given".into());
    };
    Ok((engine, name, &payload[end..]))
}

/// Runs a library's code in `local`'s interpreter and returns what it registered.
fn load_into(local: &FnLocal, code: &[u8]) -> Result<Vec<Registered>, String> {
    let f = local
        .engine
        .lua
        .load(code)
        .set_name("@user_function")
        .set_environment(local.lib_env.clone())
        .into_function()
        .map_err(|e| match e {
            mlua::Error::SyntaxError { message, .. } => {
                format!("Error compiling function: {message}")
            }
            other => format!("Error compiling function: {other}"),
        })?;
    REGISTERING.with(|r| *r.borrow_mut() = Some(Vec::new()));
    let _ = local.lib_meta.raw_set("__index", local.load_api.clone());
    super::engine::arm(
        super::engine::LOAD_TIME_LIMIT,
        super::engine::LOAD_TIMEOUT_MSG,
    );
    let ran = f.call::<()>(());
    super::engine::disarm();
    let _ = local
        .lib_meta
        .raw_set("__index", local.engine.globals.clone());
    let registered = REGISTERING
        .with(|r| r.borrow_mut().take())
        .unwrap_or_default();
    if let Err(e) = ran {
        let msg = super::engine::error_message(&local.engine.lua, e);
        return Err(format!("Error registering functions: {msg}"));
    }
    Ok(registered)
}

impl Registry {
    /// FUNCTION LOAD: the library's name, or the error reply.
    pub fn load(&self, payload: Bytes, replace: bool) -> Result<String, String> {
        let (engine, name, code) = metadata(&payload).map_err(|e| format!("ERR {e}"))?;
        if !valid_name(&name) {
            return Err(format!("ERR {BAD_NAME}"));
        }
        if !engine.eq_ignore_ascii_case("lua") {
            return Err(format!("ERR Engine '{engine}' not found"));
        }
        if !replace && lock(&self.inner).libraries.contains_key(&name) {
            return Err(format!("ERR Library '{name}' already exists"));
        }
        let version = self.versions.fetch_add(1, Relaxed) + 1;
        let registered = with_engine(|local| {
            let registered = load_into(local, code)?;
            let functions: HashMap<String, Function> = registered
                .iter()
                .map(|r| (r.info.name.clone(), r.callback.clone()))
                .collect();
            let infos: Vec<FunctionInfo> = registered.into_iter().map(|r| r.info).collect();
            local.loaded.insert(name.clone(), (version, functions));
            Ok::<_, String>(infos)
        })?
        .map_err(|e| format!("ERR {e}"))?;
        if registered.is_empty() {
            return Err("ERR No functions registered".into());
        }
        let mut libs = lock(&self.inner);
        for f in &registered {
            if let Some(owner) = libs.functions.get(&f.name.to_ascii_lowercase()) {
                if owner != &name || !replace {
                    return Err(format!("ERR Function {} already exists", f.name));
                }
            }
        }
        if let Some(old) = libs.libraries.remove(&name) {
            for f in &old.functions {
                libs.functions.remove(&f.name.to_ascii_lowercase());
            }
        }
        for f in &registered {
            libs.functions
                .insert(f.name.to_ascii_lowercase(), name.clone());
        }
        libs.libraries.insert(
            name.clone(),
            Arc::new(Library {
                name: name.clone(),
                code: payload.clone(),
                functions: registered,
                version,
            }),
        );
        Ok(name)
    }

    pub fn delete(&self, name: &str) -> bool {
        let mut libs = lock(&self.inner);
        match libs.libraries.remove(name) {
            Some(old) => {
                for f in &old.functions {
                    libs.functions.remove(&f.name.to_ascii_lowercase());
                }
                true
            }
            None => false,
        }
    }

    pub fn flush(&self) {
        let mut libs = lock(&self.inner);
        libs.libraries.clear();
        libs.functions.clear();
    }

    pub fn libraries(&self) -> Vec<Arc<Library>> {
        lock(&self.inner).libraries.values().cloned().collect()
    }

    /// The library holding function `name`, and the function.
    pub fn find(&self, name: &str) -> Option<(Arc<Library>, FunctionInfo)> {
        let libs = lock(&self.inner);
        let lib = libs
            .libraries
            .get(libs.functions.get(&name.to_ascii_lowercase())?)?
            .clone();
        let info = lib
            .functions
            .iter()
            .find(|f| f.name.eq_ignore_ascii_case(name))?
            .clone();
        Some((lib, info))
    }

    pub fn counts(&self) -> (usize, usize) {
        let libs = lock(&self.inner);
        (libs.libraries.len(), libs.functions.len())
    }
}

/// Runs function `name` (already admitted) in this thread's functions interpreter.
pub fn run(ctx: &mut Ctx<'_>, inv: &Invocation, name: &str) {
    let Some((lib, info)) = ctx.shared.scripts.functions.find(name) else {
        ctx.out.error("ERR Function not found");
        return;
    };
    let result = with_engine(|local| {
        let current = local
            .loaded
            .get(&lib.name)
            .is_some_and(|(v, _)| *v == lib.version);
        if !current {
            let code = metadata(&lib.code).map(|(_, _, c)| c).unwrap_or(&[]);
            match load_into(local, code) {
                Ok(registered) => {
                    let functions = registered
                        .into_iter()
                        .map(|r| (r.info.name, r.callback))
                        .collect();
                    local
                        .loaded
                        .insert(lib.name.clone(), (lib.version, functions));
                }
                Err(e) => {
                    ctx.out.error(&format!("ERR {e}"));
                    return;
                }
            }
        }
        let f = local
            .loaded
            .get(&lib.name)
            .and_then(|(_, fs)| fs.get(&info.name))
            .cloned();
        match f {
            Some(f) => super::execute(ctx, &local.engine, f, inv, &info.name, false),
            None => ctx.out.error("ERR Function not found"),
        }
    });
    if let Err(e) = result {
        ctx.out.error(&e);
    }
}

/// Used by FUNCTION LIST: a table-free view for the reply.
pub fn flag_names(flags: u32) -> impl Iterator<Item = &'static str> {
    flag::NAMES
        .iter()
        .filter(move |(bit, _)| flags & bit != 0)
        .map(|(_, n)| *n)
}
