"""Load and validate the FAQ bank (``faq/*.yaml``) into frozen records.

Every problem found is reported, each naming the file, the line and the
entry id, so a curator can fix a whole batch at once. The folder may also
hold ``site.yaml`` (placeholder values), ``dict.txt`` (jieba user words),
``synonyms.yaml`` (canonical word → variants), ``outside.yaml`` (topics
outside the bureau's remit, routed elsewhere) and ``thresholds.yaml``
(decision thresholds written by ``python -m bot fit``).

One job per module: :mod:`.records` (the frozen records), :mod:`.reader`
(YAML with line numbers, syntax errors in plain Chinese), :mod:`.extras`
(the extra files), :mod:`.entries` (each FAQ entry and the checks across
entries) and :mod:`.load` (:func:`load_bank`, the folder as a whole).
"""

# The bank folder's layout (DICT_FILE, EXTRA_FILES, ENTRY_KEYS) is importable from here too.
from .entries import ENTRY_KEYS as ENTRY_KEYS
from .load import DICT_FILE as DICT_FILE
from .load import EXTRA_FILES as EXTRA_FILES
from .load import bank_files, load_bank
from .reader import shown_path
from .records import SMALLTALK, Bank, Faq, Link, OutsideTopic

__all__ = [
    "SMALLTALK",
    "Bank",
    "Faq",
    "Link",
    "OutsideTopic",
    "load_bank",
    "bank_files",
    "shown_path",
]
