"""What the binaries in baselines/ share: their flags (`common_flags`), start-up
(`app.run`) and the filter of TensorFlow's start-up notices (`notices`). Imported only by
the binaries; importing any of it defines no flag and touches no descriptor or
environment variable."""
