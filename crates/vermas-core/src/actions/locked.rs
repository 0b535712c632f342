//! Writing to two stores at once: a work order's home store and a factory's, locked in one
//! global order so two commands never wait on each other.

use crate::error::Result;
use crate::event::NewEvent;
use crate::store::{Store, Writer};

/// The writers of a work order's home store and of a factory store, taken in one global order.
pub struct Locked<'a> {
    home: Option<Writer<'a>>,
    pub factory: Writer<'a>,
}

impl<'a> Locked<'a> {
    /// Locks both (once when they are the same store), in path order: the company store always
    /// sorts before its factories, so every command takes the company lock first.
    pub fn take(home: &'a Store, factory: &'a Store) -> Result<Locked<'a>> {
        if home.dir() == factory.dir() {
            return Ok(Locked {
                home: None,
                factory: factory.lock()?,
            });
        }
        if home.dir() < factory.dir() {
            let h = home.lock()?;
            let f = factory.lock()?;
            Ok(Locked {
                home: Some(h),
                factory: f,
            })
        } else {
            let f = factory.lock()?;
            let h = home.lock()?;
            Ok(Locked {
                home: Some(h),
                factory: f,
            })
        }
    }

    /// The writer of the work order's home store.
    pub fn home(&mut self) -> &mut Writer<'a> {
        match self.home.as_mut() {
            Some(h) => h,
            None => &mut self.factory,
        }
    }

    /// Appends the home store's and the factory's events (one batch each; one batch in total
    /// when they are the same store).
    pub fn append(&mut self, home: Vec<NewEvent>, factory: Vec<NewEvent>) -> Result<()> {
        match self.home.as_mut() {
            Some(h) => {
                h.append(home)?;
                self.factory.append(factory)?;
            }
            None => {
                let mut all = home;
                all.extend(factory);
                self.factory.append(all)?;
            }
        }
        Ok(())
    }

    pub fn report_warnings(&mut self) {
        if let Some(h) = self.home.as_mut() {
            h.report_warnings();
        }
        self.factory.report_warnings();
    }
}
