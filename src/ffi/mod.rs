//! The C ABI. The only place with `extern "C"`; nothing below it knows C.
