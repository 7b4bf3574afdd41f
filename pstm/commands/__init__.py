"""One module per ``pstm`` sub-command (see :mod:`pstm.cli`)."""
