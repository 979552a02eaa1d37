"""Request bodies to columnar batches: decoders for each body shape end in one `Batch` type (decode.py);
raw values become typed numpy columns (columns.py). Nothing here touches state."""
