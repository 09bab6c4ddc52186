//! Composing [`RuntimeOffsets`] from a layout: nested fields summed
//! (`g.sched.sp`), every missing field named in the error.

use super::*;
/// Field lookups with errors that name what is missing.
struct Lookup<'a> {
    layout: &'a RuntimeLayout,
}

impl Lookup<'_> {
    fn missing_struct(&self, name: &str) -> LayoutError {
        LayoutError::MissingStruct {
            source_desc: self.layout.source.to_string(),
            name: name.to_string(),
        }
    }

    fn missing_field(&self, s: &str, f: &str) -> LayoutError {
        LayoutError::MissingField {
            source_desc: self.layout.source.to_string(),
            structure: s.to_string(),
            field: f.to_string(),
        }
    }

    fn size(&self, s: &str) -> Result<u64, LayoutError> {
        self.layout.size(s).ok_or_else(|| self.missing_struct(s))
    }

    fn opt(&self, s: &str, f: &str) -> Option<u64> {
        self.layout.field(s, f)
    }

    fn req(&self, s: &str, f: &str) -> Result<u64, LayoutError> {
        self.layout
            .struct_layout(s)
            .ok_or_else(|| self.missing_struct(s))?;
        self.opt(s, f).ok_or_else(|| self.missing_field(s, f))
    }

    /// The first of several spellings of a field (renamed across versions).
    fn any(&self, s: &str, fs: &[&str]) -> Result<u64, LayoutError> {
        self.layout
            .struct_layout(s)
            .ok_or_else(|| self.missing_struct(s))?;
        fs.iter()
            .find_map(|f| self.opt(s, f))
            .ok_or_else(|| self.missing_field(s, &fs.join("/")))
    }

    /// `off(s.f) + off(inner.g)`: a field of an embedded struct.
    fn nested(&self, s: &str, f: &str, inner: &str, g: &str) -> Result<u64, LayoutError> {
        let outer = self.req(s, f)?;
        let inner_off = self.req(inner, g)?;
        outer
            .checked_add(inner_off)
            .ok_or_else(|| self.missing_field(s, &format!("{f}.{g}")))
    }
}

impl RuntimeOffsets {
    /// Composes and checks every offset. Fails with the first required
    /// struct or field the layout lacks.
    pub fn from_layout(layout: &RuntimeLayout) -> Result<Self, LayoutError> {
        let l = Lookup { layout };
        const G: &str = "runtime.g";
        const GOBUF: &str = "runtime.gobuf";
        const STACK: &str = "runtime.stack";
        const M: &str = "runtime.m";
        const P: &str = "runtime.p";
        const SCHED: &str = "runtime.schedt";
        const MD: &str = "runtime.moduledata";
        const FUNC: &str = "runtime._func";
        const PCH: &str = "runtime.pcHeader";
        const ANC: &str = "runtime.ancestorInfo";

        let g = GOffsets {
            size: l.size(G)?,
            stack_lo: l.nested(G, "stack", STACK, "lo")?,
            stack_hi: l.nested(G, "stack", STACK, "hi")?,
            m: l.req(G, "m")?,
            sched_sp: l.nested(G, "sched", GOBUF, "sp")?,
            sched_pc: l.nested(G, "sched", GOBUF, "pc")?,
            sched_g: l.nested(G, "sched", GOBUF, "g")?,
            sched_lr: l.nested(G, "sched", GOBUF, "lr")?,
            sched_bp: l.nested(G, "sched", GOBUF, "bp")?,
            syscallsp: l.req(G, "syscallsp")?,
            syscallpc: l.req(G, "syscallpc")?,
            syscallbp: l.opt(G, "syscallbp"),
            atomicstatus: l.req(G, "atomicstatus")?,
            goid: l.req(G, "goid")?,
            schedlink: l.req(G, "schedlink")?,
            waitsince: l.req(G, "waitsince")?,
            waitreason: l.req(G, "waitreason")?,
            lockedm: l.req(G, "lockedm")?,
            tracking_seq: l.opt(G, "trackingSeq"),
            parent_goid: l.opt(G, "parentGoid"),
            gopc: l.req(G, "gopc")?,
            ancestors: l.req(G, "ancestors")?,
            startpc: l.req(G, "startpc")?,
            labels: l.req(G, "labels")?,
            timer: l.opt(G, "timer"),
            bubble: l.opt(G, "bubble"),
            sync_group: l.opt(G, "syncGroup"),
        };

        // 1.26 replaced the muintptr idle list with an intrusive list:
        // sched.midle is a listHeadManual whose `obj` is the head M, and each
        // idle M links to the next through m.idleNode.next.
        let (midle, idle_next) = match layout.struct_layout("runtime.listHeadManual") {
            Some(_) if l.opt(M, "idleNode").is_some() => (
                l.nested(SCHED, "midle", "runtime.listHeadManual", "obj")?,
                l.nested(M, "idleNode", "runtime.listNodeManual", "next")?,
            ),
            _ => (l.req(SCHED, "midle")?, l.req(M, "schedlink")?),
        };

        let m = MOffsets {
            size: l.size(M)?,
            g0: l.req(M, "g0")?,
            morebuf_sp: l.nested(M, "morebuf", GOBUF, "sp")?,
            morebuf_pc: l.nested(M, "morebuf", GOBUF, "pc")?,
            procid: l.req(M, "procid")?,
            gsignal: l.req(M, "gsignal")?,
            curg: l.req(M, "curg")?,
            p: l.req(M, "p")?,
            id: l.req(M, "id")?,
            mallocing: l.req(M, "mallocing")?,
            throwing: l.req(M, "throwing")?,
            preemptoff: l.req(M, "preemptoff")?,
            locks: l.req(M, "locks")?,
            dying: l.req(M, "dying")?,
            spinning: l.req(M, "spinning")?,
            blocked: l.req(M, "blocked")?,
            incgo: l.req(M, "incgo")?,
            isextra: l.opt(M, "isextra"),
            ncgo: l.req(M, "ncgo")?,
            alllink: l.req(M, "alllink")?,
            schedlink: l.req(M, "schedlink")?,
            idle_next,
            lockedg: l.req(M, "lockedg")?,
            libcallpc: l.req(M, "libcallpc")?,
            libcallsp: l.req(M, "libcallsp")?,
            libcallg: l.req(M, "libcallg")?,
            vdso_sp: l.req(M, "vdsoSP")?,
            vdso_pc: l.req(M, "vdsoPC")?,
        };

        let p = POffsets {
            size: l.size(P)?,
            id: l.req(P, "id")?,
            status: l.req(P, "status")?,
            link: l.req(P, "link")?,
            schedtick: l.req(P, "schedtick")?,
            syscalltick: l.req(P, "syscalltick")?,
            m: l.req(P, "m")?,
            runqhead: l.req(P, "runqhead")?,
            runqtail: l.req(P, "runqtail")?,
            runq: l.req(P, "runq")?,
            runnext: l.req(P, "runnext")?,
        };

        // Up to 1.24 the global queue's length is schedt.runqsize next to a
        // two-word gQueue; from 1.25 the gQueue carries it.
        let runq_size = match l.opt(SCHED, "runqsize") {
            Some(off) => off,
            None => l.nested(SCHED, "runq", "runtime.gQueue", "size")?,
        };
        let sched = SchedOffsets {
            size: l.size(SCHED)?,
            goidgen: l.req(SCHED, "goidgen")?,
            lock: l.req(SCHED, "lock")?,
            midle,
            nmidle: l.req(SCHED, "nmidle")?,
            nmidlelocked: l.req(SCHED, "nmidlelocked")?,
            mnext: l.req(SCHED, "mnext")?,
            maxmcount: l.req(SCHED, "maxmcount")?,
            nmsys: l.req(SCHED, "nmsys")?,
            nmfreed: l.req(SCHED, "nmfreed")?,
            ngsys: l.req(SCHED, "ngsys")?,
            pidle: l.req(SCHED, "pidle")?,
            npidle: l.req(SCHED, "npidle")?,
            nmspinning: l.req(SCHED, "nmspinning")?,
            needspinning: l.opt(SCHED, "needspinning"),
            runq_head: l.nested(SCHED, "runq", "runtime.gQueue", "head")?,
            runq_tail: l.nested(SCHED, "runq", "runtime.gQueue", "tail")?,
            runq_size,
            gcwaiting: l.req(SCHED, "gcwaiting")?,
            stopwait: l.req(SCHED, "stopwait")?,
            sysmonwait: l.req(SCHED, "sysmonwait")?,
        };

        let moduledata = ModuledataOffsets {
            size: l.size(MD)?,
            pc_header: l.req(MD, "pcHeader")?,
            funcnametab: l.req(MD, "funcnametab")?,
            cutab: l.req(MD, "cutab")?,
            filetab: l.req(MD, "filetab")?,
            pctab: l.req(MD, "pctab")?,
            pclntable: l.req(MD, "pclntable")?,
            ftab: l.req(MD, "ftab")?,
            findfunctab: l.req(MD, "findfunctab")?,
            minpc: l.req(MD, "minpc")?,
            maxpc: l.req(MD, "maxpc")?,
            text: l.req(MD, "text")?,
            etext: l.req(MD, "etext")?,
            noptrdata: l.req(MD, "noptrdata")?,
            enoptrdata: l.req(MD, "enoptrdata")?,
            data: l.req(MD, "data")?,
            edata: l.req(MD, "edata")?,
            bss: l.req(MD, "bss")?,
            ebss: l.req(MD, "ebss")?,
            noptrbss: l.req(MD, "noptrbss")?,
            enoptrbss: l.req(MD, "enoptrbss")?,
            end: l.req(MD, "end")?,
            types: l.req(MD, "types")?,
            etypes: l.req(MD, "etypes")?,
            rodata: l.req(MD, "rodata")?,
            gofunc: l.req(MD, "gofunc")?,
            epclntab: l.opt(MD, "epclntab"),
            textsectmap: l.req(MD, "textsectmap")?,
            modulename: l.req(MD, "modulename")?,
            next: l.req(MD, "next")?,
        };

        let func = FuncOffsets {
            size: l.size(FUNC)?,
            entry_off: l.any(FUNC, &["entryOff", "entryoff"])?,
            name_off: l.any(FUNC, &["nameOff", "nameoff"])?,
            args: l.req(FUNC, "args")?,
            deferreturn: l.req(FUNC, "deferreturn")?,
            pcsp: l.req(FUNC, "pcsp")?,
            pcfile: l.req(FUNC, "pcfile")?,
            pcln: l.req(FUNC, "pcln")?,
            npcdata: l.req(FUNC, "npcdata")?,
            cu_offset: l.req(FUNC, "cuOffset")?,
            start_line: l.opt(FUNC, "startLine"),
            func_id: l.req(FUNC, "funcID")?,
            flag: l.req(FUNC, "flag")?,
            nfuncdata: l.req(FUNC, "nfuncdata")?,
        };

        let pc_header = PcHeaderOffsets {
            size: l.size(PCH)?,
            magic: l.req(PCH, "magic")?,
            min_lc: l.req(PCH, "minLC")?,
            ptr_size: l.req(PCH, "ptrSize")?,
            nfunc: l.req(PCH, "nfunc")?,
            nfiles: l.req(PCH, "nfiles")?,
            text_start: l.opt(PCH, "textStart"),
            funcname_offset: l.req(PCH, "funcnameOffset")?,
            cu_offset: l.req(PCH, "cuOffset")?,
            filetab_offset: l.req(PCH, "filetabOffset")?,
            pctab_offset: l.req(PCH, "pctabOffset")?,
            pcln_offset: l.req(PCH, "pclnOffset")?,
        };

        let ancestor_info = AncestorInfoOffsets {
            size: l.size(ANC)?,
            pcs: l.req(ANC, "pcs")?,
            goid: l.req(ANC, "goid")?,
            gopc: l.req(ANC, "gopc")?,
        };

        Ok(RuntimeOffsets {
            source: layout.source,
            g,
            m,
            p,
            sched,
            moduledata,
            func,
            pc_header,
            ancestor_info,
        })
    }
}
