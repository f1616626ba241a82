import ArgumentParser
import Glibc
import PyTap

/// `--native`, `--native-all` and `--kernel`, shared by `sample` and `top`.
struct NativeFlags: ParsableArguments {
    @Flag(name: .long, help: "Native stacks too: C frames of extensions and libraries with the Python frames they run, captured by a BPF program without stopping the target (needs root or CAP_BPF+CAP_PERFMON; else a brief ptrace stop per sample, or Python frames only).")
    var native = false

    @Flag(name: .customLong("native-all"), help: "Like --native, with every native frame (interpreter internals too) and kernel frames.")
    var nativeAll = false

    @Flag(name: .long, help: "With --native: kernel frames (suffix _[k]) on top of each stack.")
    var kernel = false

    var requested: Bool { native || nativeAll }

    /// What the native sampler keeps; nil without --native.
    var options: NativeSamplingOptions? {
        requested ? NativeSamplingOptions(allNativeFrames: nativeAll, kernelFrames: kernel || nativeAll) : nil
    }

    func validate() throws {
        if kernel && !requested { throw ValidationError("--kernel needs --native or --native-all") }
    }

    /// The sampling options native capture does not combine with yet, named for the error.
    func refuse(gil: Bool, asyncTasks: Bool, subprocesses: Bool = false) throws {
        guard requested else { return }
        if subprocesses { throw ValidationError("--native does not follow subprocesses yet; drop --subprocesses") }
        if gil { throw ValidationError("--native does not combine with --gil yet") }
        if asyncTasks { throw ValidationError("--native does not combine with --async yet") }
    }
}

/// The sampler of one target and how it captures stacks. With native options: by the BPF
/// program when the kernel allows it; where it refuses BPF or perf events, by a brief
/// ptrace stop per sample (the reason said once on stderr); else Python frames only.
/// `PYTAP_NATIVE_CAPTURE=ptrace` takes the ptrace way without trying BPF (tests).
struct ChosenSampler {
    /// How native stacks are captured, when they were asked for.
    enum Capture {
        case bpf, ptrace, pythonOnly
    }

    let sampler: any StackSampler
    /// nil without native options.
    let capture: Capture?
    /// How the stacks are captured, for summaries (with the reason BPF was refused).
    let captureMethod: String?
    /// The same in a few words, for `top`'s header.
    var shortCaptureMethod: String? {
        switch capture {
        case nil: return nil
        case .bpf: return "native stacks by BPF (target never stopped)"
        case .ptrace: return "native stacks by a ptrace stop per sample (BPF unavailable)"
        case .pythonOnly: return "Python frames only (native sampling unavailable)"
        }
    }

    init(target: PythonTarget, options: SamplerOptions, native: NativeSamplingOptions?) throws {
        guard let native else {
            sampler = try Sampler(target: target, options: options)
            capture = nil
            captureMethod = nil
            return
        }
        let refusal: String
        if ChosenSampler.forcesPtraceCapture {
            refusal = "PYTAP_NATIVE_CAPTURE=ptrace"
        } else {
            do {
                sampler = try NativeSampler(target: target, options: options, native: native)
                capture = .bpf
                captureMethod = "native stacks captured by a BPF program on each thread's task clock"
                    + (options.includeIdle ? ", and for sleeping threads on the scheduler's switch when they last went off the CPU" : "")
                    + " (the target is never stopped)"
                return
            } catch let error as NativeCaptureUnavailable {
                refusal = error.reason
            }
        }
        do {
            sampler = try PtraceNativeSampler(target: target, options: options, native: native)
            capture = .ptrace
            writeStandardError("pytap: BPF sampling unavailable (\(refusal)); stopping each running thread briefly per sample (ptrace) instead\n")
            captureMethod = "ptrace: each running thread stopped briefly per sample to read its native stack (BPF sampling unavailable: \(refusal)); no kernel frames"
        } catch {
            writeStandardError("pytap: native sampling unavailable: \(refusal); \(error); sampling Python frames only\n")
            sampler = try Sampler(target: target, options: options)
            capture = .pythonOnly
            captureMethod = "Python frames only (native sampling unavailable: \(refusal))"
        }
    }

    static var forcesPtraceCapture: Bool {
        getenv("PYTAP_NATIVE_CAPTURE").map { String(cString: $0) == "ptrace" } ?? false
    }
}
