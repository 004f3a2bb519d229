"""Split supernets (few-shot, GM-NAS, NAS-LID): the shared tree mechanism, LID, partitions and criteria."""
