//! Charts drawn with plotters (schedule curves, compare plots).
