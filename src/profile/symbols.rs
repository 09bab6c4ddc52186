//! Attributed stacks to Go's names, the way Go's CPU profile writes them:
//! every inlined level a frame of its own (same PC), wrappers elided as
//! Go's `tracebackPCs` elides them (unless they call a panic function),
//! function names as `runtime.Frame.Function` gives them (generic
//! instantiations by their shape, `F[go.shape.int]`, as Go writes them),
//! without the `runtime.goexit` every goroutine starts from.

use super::attribute::RawFrame;
use super::ProfFrame;
use crate::binary::program::GoProgram;
use crate::binary::symbolize::{frames_at, SymFrame};
use crate::gotrace::frames::FuncIds;
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// Symbolizes each PC once.
pub(crate) struct Symbols<'p, 'a> {
    prog: &'p GoProgram<'a>,
    ids: FuncIds,
    cache: FxHashMap<u64, Arc<[SymFrame]>>,
}

impl<'p, 'a> Symbols<'p, 'a> {
    pub(crate) fn new(prog: &'p GoProgram<'a>) -> Self {
        Symbols {
            prog,
            ids: FuncIds::for_minor(prog.version.minor),
            cache: FxHashMap::default(),
        }
    }

    fn at(&mut self, sym_pc: u64) -> Arc<[SymFrame]> {
        let prog = self.prog;
        self.cache
            .entry(sym_pc)
            .or_insert_with(|| {
                let v = match prog.pclntab.find_func(sym_pc) {
                    Ok(f) => {
                        frames_at(&f, sym_pc).unwrap_or_else(|_| vec![SymFrame::unknown_line(&f)])
                    }
                    Err(_) => vec![SymFrame::unknown()],
                };
                Arc::from(v)
            })
            .clone()
    }

    /// The logical frames of a stack, leaf first.
    pub(crate) fn frames(&mut self, raw: &[RawFrame]) -> Vec<ProfFrame> {
        let mut out = Vec::new();
        let mut callee_id: Option<u8> = None;
        for f in raw {
            match *f {
                RawFrame::Synthetic(name) => {
                    out.push(ProfFrame {
                        function: name.into(),
                        file: "".into(),
                        line: 0,
                        pc: 0,
                        inlined: false,
                    });
                    callee_id = None;
                }
                RawFrame::Go { pc, sym_pc } => {
                    for sf in self.at(sym_pc).iter() {
                        let elide = sf.func_id == self.ids.wrapper
                            && !callee_id.is_some_and(|c| {
                                c == self.ids.gopanic
                                    || c == self.ids.sigpanic
                                    || c == self.ids.panicwrap
                            });
                        callee_id = Some(sf.func_id);
                        if elide {
                            continue;
                        }
                        out.push(ProfFrame {
                            function: sf.name.clone(),
                            file: sf.file.clone(),
                            line: i64::from(sf.line),
                            pc,
                            inlined: sf.inlined,
                        });
                    }
                }
            }
        }
        // Go's CPU profile stacks end at the goroutine's function, not at
        // the `runtime.goexit` it returns to.
        if out.last().is_some_and(|f| &*f.function == "runtime.goexit") {
            out.pop();
        }
        out
    }
}
