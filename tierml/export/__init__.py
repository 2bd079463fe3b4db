"""Export targets: C source and an int8 runtime for microcontrollers (`tierml export --target mcu`)."""
