//! The one way a rule family's kernel maps are replaced: every family (exec rules, file watch
//! set and rules, network deny rules) keeps two generations of its maps, tagged in the keys or
//! by index, and one word the kernel reads once per event says which is in force.
//!
//! [`replace`] clears the generation the kernel does not read (what it held two replaces ago;
//! it has not been read since the last flip), fills it completely, then flips the word: a hook
//! sees the old rule set or the new one, never half of one and never none. When filling fails
//! the half-written generation is cleared again and the rules in force stay in force. A family
//! says only how to read the word, clear a generation, fill one and flip ([`Generations`]).

/// A family's two generations of kernel maps.
pub(crate) trait Generations {
    type Error;

    /// The generation the kernel reads now (0 or 1).
    fn active(&mut self) -> Result<u8, Self::Error>;

    /// Removes every entry of generation `gen`.
    fn clear(&mut self, gen: u8) -> Result<(), Self::Error>;

    /// Writes the new rule set into generation `gen`, which the kernel does not read.
    fn fill(&mut self, gen: u8) -> Result<(), Self::Error>;

    /// Makes `gen` the generation the kernel reads, with one write.
    fn flip(&mut self, gen: u8) -> Result<(), Self::Error>;
}

/// Replaces a family's rules: clear the inactive generation, fill it, flip to it. Returns the
/// generation now in force.
pub(crate) fn replace<G: Generations>(maps: &mut G) -> Result<u8, G::Error> {
    let next = (maps.active()? & 1) ^ 1;
    maps.clear(next)?;
    if let Err(err) = maps.fill(next) {
        // Best effort: the generation is not read, and the next replace clears it anyway.
        let _ = maps.clear(next);
        return Err(err);
    }
    maps.flip(next)?;
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two generations of a set of numbers, and a log of every operation.
    #[derive(Default)]
    struct Fake {
        gens: [Vec<u32>; 2],
        active: u8,
        next_set: Vec<u32>,
        fail_fill_after: Option<usize>,
        log: Vec<String>,
    }

    impl Generations for Fake {
        type Error = String;

        fn active(&mut self) -> Result<u8, String> {
            Ok(self.active)
        }

        fn clear(&mut self, gen: u8) -> Result<(), String> {
            assert_ne!(gen, self.active, "the generation in force is never cleared");
            self.log.push(format!("clear {gen}"));
            self.gens[gen as usize].clear();
            Ok(())
        }

        fn fill(&mut self, gen: u8) -> Result<(), String> {
            assert_ne!(gen, self.active, "the generation in force is never written");
            assert!(
                self.gens[gen as usize].is_empty(),
                "filled on top of stale entries"
            );
            self.log.push(format!("fill {gen}"));
            for (i, v) in self.next_set.iter().enumerate() {
                if self.fail_fill_after == Some(i) {
                    return Err("map full".into());
                }
                self.gens[gen as usize].push(*v);
            }
            Ok(())
        }

        fn flip(&mut self, gen: u8) -> Result<(), String> {
            self.log.push(format!("flip {gen}"));
            self.active = gen;
            Ok(())
        }
    }

    #[test]
    fn replace_clears_fills_and_flips_the_inactive_generation() {
        let mut maps = Fake {
            gens: [vec![1, 2], vec![7]],
            next_set: vec![3, 4],
            ..Fake::default()
        };
        assert_eq!(replace(&mut maps), Ok(1));
        assert_eq!(maps.log, ["clear 1", "fill 1", "flip 1"]);
        assert_eq!((maps.active, &maps.gens[1]), (1, &vec![3, 4]));
        // The old generation stays whole until the next replace (an event may be reading it).
        assert_eq!(maps.gens[0], [1, 2]);

        maps.next_set = vec![5];
        maps.log.clear();
        assert_eq!(replace(&mut maps), Ok(0));
        assert_eq!(maps.log, ["clear 0", "fill 0", "flip 0"]);
        assert_eq!(maps.gens, [vec![5], vec![3, 4]]);
    }

    #[test]
    fn a_failed_fill_leaves_the_rules_in_force_and_clears_the_half_written_generation() {
        let mut maps = Fake {
            gens: [vec![1, 2], vec![]],
            next_set: vec![3, 4, 5],
            fail_fill_after: Some(2),
            ..Fake::default()
        };
        assert_eq!(replace(&mut maps), Err("map full".to_string()));
        assert_eq!(maps.log, ["clear 1", "fill 1", "clear 1"]);
        assert_eq!(maps.active, 0);
        assert_eq!(maps.gens, [vec![1, 2], vec![]]);
    }

    #[test]
    fn an_out_of_range_active_word_is_read_as_its_low_bit() {
        struct Odd(Fake);
        impl Generations for Odd {
            type Error = String;
            fn active(&mut self) -> Result<u8, String> {
                Ok(3)
            }
            fn clear(&mut self, gen: u8) -> Result<(), String> {
                self.0.log.push(format!("clear {gen}"));
                Ok(())
            }
            fn fill(&mut self, gen: u8) -> Result<(), String> {
                self.0.log.push(format!("fill {gen}"));
                Ok(())
            }
            fn flip(&mut self, gen: u8) -> Result<(), String> {
                self.0.flip(gen)
            }
        }
        let mut maps = Odd(Fake::default());
        assert_eq!(replace(&mut maps), Ok(0));
        assert_eq!(maps.0.log, ["clear 0", "fill 0", "flip 0"]);
    }
}
