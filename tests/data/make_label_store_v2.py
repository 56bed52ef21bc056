"""Write tests/data/label_store_v2.sql: python make_label_store_v2.py OUT.sql OLD_STORE.py TMPDIR, with
OLD_STORE.py from `git show 20eb063^:skal/labeling/store.py` (the last schema version 2 code)."""
import importlib.util, sys, os, sqlite3
spec = importlib.util.spec_from_file_location("store_v2", sys.argv[2])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
assert m.SCHEMA_VERSION == 2
path = os.path.join(sys.argv[3], "skal.db")
os.makedirs(sys.argv[3], exist_ok=True)
if os.path.exists(path): os.remove(path)
s = m.LabelStore.create(path, ["cat", "dog", "bird"], {"batch_size": 4, "seed": 0})
s.update_images(add=[(f"img{i}.png", f"{i:064x}", 8, 8, "dog" if i == 5 else None) for i in range(6)])
r = s.begin_round("random_sampling", None, {"seed": 0})
s.finish_round(r, [(1, None, None, None), (2, None, None, None), (3, None, None, None), (4, None, None, None)],
               n_labeled=1, n_train=0, n_holdout=0, accuracy=None)
s.add_answer(1, "label", "cat", annotator="alice", source="web")
s.add_answer(1, "label", "dog", annotator="bob", source="web")   # v2: replaced alice's
s.add_answer(2, "label", "bird", annotator="alice", source="web")
s.add_answer(2, "label", "cat", annotator="alice", source="web")
s.undo(annotator="alice", source="web")                           # back to bird
s.add_answer(3, "skip", annotator="bob", source="web")
s.add_answer(4, "label", "cat", annotator="bob", source="api")
s.undo(annotator="bob", source="api")                             # 4 unanswered again
s.add_answer(5, "label", "cat", annotator="alice", source="web") # over the imported dog
s.close()
conn = sqlite3.connect(path)
with open(sys.argv[1], "w") as f:
    f.write("-- A schema version 2 labelling store made by skal's store.py of commit 20eb063^ (the last\n"
            "-- version 2 code) with tests/data/make_label_store_v2.py's steps; loaded by test_label_annotators.\n")
    for line in conn.iterdump():
        f.write(line + "\n")
