//! How the webview paints: on the CPU when the machine has no GPU, WebKit's default otherwise
//! (`ARCHITECTURE.md` § The desktop shell's start).
//!
//! WebKitGTK (2.50) paints through OpenGL by default. Without a GPU (no DRM render node, e.g. a
//! VM, a remote desktop or Xvfb) that OpenGL is Mesa's llvmpipe, OpenGL emulated on the CPU, which
//! costs more CPU and memory than letting WebKit's Skia rasterise on the CPU itself
//! (`docs/benchmarks.md` § Desktop app). So when no `/dev/dri/renderD*` exists, `main` sets
//! [`CPU_RENDERING_ENV`] (`WEBKIT_SKIA_ENABLE_CPU_RENDERING=1`) in the process environment before
//! any thread starts; the web process WebKit spawns inherits it. With a render node it leaves
//! WebKit's default. A user who sets one of WebKit's own painting variables
//! ([`WEBKIT_PAINTING_ENV`]) has chosen, and the app then changes nothing.
//!
//! WebKit's hardware acceleration policy "never" (its settings API) would save more memory, but
//! in that mode WebKitWebDriver's clicks never complete in WebKitGTK 2.50 (the WebDriver flows of
//! `tests/webdriver` hang at their first click), so the app does not use it.

use std::ffi::OsString;
use std::path::Path;

/// WebKitGTK's variable that makes Skia rasterise on the CPU (the compositor stays as it is).
pub const CPU_RENDERING_ENV: &str = "WEBKIT_SKIA_ENABLE_CPU_RENDERING";

/// Where DRM device nodes live on Linux.
pub const DRI_DIR: &str = "/dev/dri";

/// WebKitGTK's environment variables that choose how it paints; any of them set (even empty)
/// means the user chose, and the app leaves painting alone.
pub const WEBKIT_PAINTING_ENV: [&str; 4] = [
    "WEBKIT_DISABLE_COMPOSITING_MODE",
    "WEBKIT_FORCE_COMPOSITING_MODE",
    "WEBKIT_SKIA_ENABLE_CPU_RENDERING",
    "WEBKIT_DISABLE_DMABUF_RENDERER",
];

/// How the webview should paint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Painting {
    /// Leave WebKit's default (GPU painting through OpenGL).
    WebKitDefault,
    /// Rasterise on the CPU: [`CPU_RENDERING_ENV`] set to `1`.
    Cpu,
}

/// The decision: CPU painting exactly when there is no render node and the user did not choose.
pub fn choose(render_node_present: bool, user_chose: bool) -> Painting {
    if user_chose || render_node_present {
        Painting::WebKitDefault
    } else {
        Painting::Cpu
    }
}

/// Whether `dir` (normally [`DRI_DIR`]) holds a DRM render node (`renderD128`, …). A missing or
/// unreadable directory means none.
pub fn render_node_present(dir: &Path) -> bool {
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries
            .filter_map(Result::ok)
            .any(|entry| entry.file_name().to_string_lossy().starts_with("renderD"))
    })
}

/// Whether any of [`WEBKIT_PAINTING_ENV`] is set, looked up through `var`.
pub fn user_chose(var: impl Fn(&str) -> Option<OsString>) -> bool {
    WEBKIT_PAINTING_ENV.iter().any(|name| var(name).is_some())
}

/// The decision for this machine and this process's environment.
pub fn for_this_machine() -> Painting {
    choose(
        render_node_present(Path::new(DRI_DIR)),
        user_chose(|name| std::env::var_os(name)),
    )
}

/// Chooses how this process's webview paints ([`for_this_machine`]) and, for [`Painting::Cpu`],
/// sets [`CPU_RENDERING_ENV`] for WebKit (Linux only; elsewhere nothing changes).
///
/// # Safety
///
/// Call only while the process has a single thread (first thing in `main`): it writes the
/// process environment, which no other thread may read or write at the same time
/// ([`std::env::set_var`]'s condition).
#[allow(unsafe_code)]
pub unsafe fn choose_before_threads() -> Painting {
    let painting = if cfg!(target_os = "linux") {
        for_this_machine()
    } else {
        Painting::WebKitDefault
    };
    if painting == Painting::Cpu {
        // SAFETY: the caller guarantees a single-threaded process (this function's contract).
        unsafe { std::env::set_var(CPU_RENDERING_ENV, "1") };
    }
    painting
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_painting_exactly_without_a_render_node_and_without_a_user_choice() {
        assert_eq!(choose(false, false), Painting::Cpu);
        assert_eq!(choose(true, false), Painting::WebKitDefault);
        assert_eq!(choose(false, true), Painting::WebKitDefault);
        assert_eq!(choose(true, true), Painting::WebKitDefault);
    }

    #[test]
    fn a_render_node_is_found_by_its_name() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!render_node_present(dir.path()), "empty directory");
        std::fs::write(dir.path().join("card0"), b"").unwrap();
        assert!(
            !render_node_present(dir.path()),
            "a card node alone is no render node"
        );
        std::fs::write(dir.path().join("renderD128"), b"").unwrap();
        assert!(render_node_present(dir.path()));
    }

    #[test]
    fn a_missing_dri_directory_means_no_render_node() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!render_node_present(&dir.path().join("dri")));
    }

    #[test]
    fn any_webkit_painting_variable_is_the_users_choice() {
        assert!(!user_chose(|_| None));
        for name in WEBKIT_PAINTING_ENV {
            let chosen = user_chose(|asked| (asked == name).then(|| OsString::from("0")));
            assert!(chosen, "{name}");
        }
        // Another WebKit variable is not a painting choice.
        assert!(!user_chose(|asked| {
            (asked == "WEBKIT_DISABLE_SANDBOX_THIS_IS_DANGEROUS").then(|| OsString::from("1"))
        }));
    }

    #[test]
    fn the_full_decision_from_a_directory_and_an_environment() {
        let dir = tempfile::tempdir().unwrap();
        let no_env = |_: &str| None;
        let cpu_env = |asked: &str| {
            (asked == "WEBKIT_SKIA_ENABLE_CPU_RENDERING").then(|| OsString::from("1"))
        };
        let decide = |env: &dyn Fn(&str) -> Option<OsString>| {
            choose(render_node_present(dir.path()), user_chose(env))
        };
        assert_eq!(decide(&no_env), Painting::Cpu);
        assert_eq!(decide(&cpu_env), Painting::WebKitDefault);
        std::fs::write(dir.path().join("renderD128"), b"").unwrap();
        assert_eq!(decide(&no_env), Painting::WebKitDefault);
    }
}
