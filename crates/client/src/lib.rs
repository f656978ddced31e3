//! The Sealpost client engine: everything the app does except drawing.
