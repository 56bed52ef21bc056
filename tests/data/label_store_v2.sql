-- A schema version 2 labelling store made by skal's store.py of commit 20eb063^ (the last
-- version 2 code) with tests/data/make_label_store_v2.py's steps; loaded by test_label_annotators.
BEGIN TRANSACTION;
CREATE TABLE answers (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id),
    kind TEXT NOT NULL CHECK (kind IN ('label', 'skip', 'undo')),
    label TEXT REFERENCES classes(name),
    undoes INTEGER REFERENCES answers(id),
    round_id INTEGER REFERENCES rounds(id),
    annotator TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at REAL NOT NULL,
    CHECK ((kind = 'label') = (label IS NOT NULL)),
    CHECK ((kind = 'undo') = (undoes IS NOT NULL))
);
INSERT INTO "answers" VALUES(1,6,'label','dog',NULL,NULL,'import','import',1.79663979600399827951e+09);
INSERT INTO "answers" VALUES(2,1,'label','cat',NULL,1,'alice','web',1.79663979601884078981e+09);
INSERT INTO "answers" VALUES(3,1,'label','dog',NULL,1,'bob','web',1.79663979602298116682e+09);
INSERT INTO "answers" VALUES(4,2,'label','bird',NULL,1,'alice','web',1.79663979602672767635e+09);
INSERT INTO "answers" VALUES(5,2,'label','cat',NULL,1,'alice','web',1.79663979602912640565e+09);
INSERT INTO "answers" VALUES(6,2,'undo',NULL,5,1,'alice','web',1.79663979603028798109e+09);
INSERT INTO "answers" VALUES(7,3,'skip',NULL,NULL,1,'bob','web',1.79663979603471183777e+09);
INSERT INTO "answers" VALUES(8,4,'label','cat',NULL,1,'bob','api',1.79663979603869533542e+09);
INSERT INTO "answers" VALUES(9,4,'undo',NULL,8,1,'bob','api',1.79663979603930568694e+09);
INSERT INTO "answers" VALUES(10,5,'label','cat',NULL,1,'alice','web',1.79663979604671287539e+09);
CREATE TABLE classes (
    name TEXT PRIMARY KEY,
    position INTEGER NOT NULL UNIQUE
);
INSERT INTO "classes" VALUES('cat',0);
INSERT INTO "classes" VALUES('dog',1);
INSERT INTO "classes" VALUES('bird',2);
CREATE TABLE current (
    image_id INTEGER PRIMARY KEY REFERENCES images(id),
    answer_id INTEGER NOT NULL REFERENCES answers(id),
    kind TEXT NOT NULL CHECK (kind IN ('label', 'skip')),
    label TEXT REFERENCES classes(name)
);
INSERT INTO "current" VALUES(1,3,'label','dog');
INSERT INTO "current" VALUES(2,4,'label','bird');
INSERT INTO "current" VALUES(3,7,'skip',NULL);
INSERT INTO "current" VALUES(5,10,'label','cat');
INSERT INTO "current" VALUES(6,1,'label','dog');
CREATE TABLE images (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL,
    sha256 TEXT NOT NULL,
    height INTEGER,
    width INTEGER,
    added_at REAL NOT NULL,
    retired_at REAL,
    retired_reason TEXT
);
INSERT INTO "images" VALUES(1,'img0.png','0000000000000000000000000000000000000000000000000000000000000000',8,8,1.79663979600381159781e+09,NULL,NULL);
INSERT INTO "images" VALUES(2,'img1.png','0000000000000000000000000000000000000000000000000000000000000001',8,8,1.79663979600381159781e+09,NULL,NULL);
INSERT INTO "images" VALUES(3,'img2.png','0000000000000000000000000000000000000000000000000000000000000002',8,8,1.79663979600381159781e+09,NULL,NULL);
INSERT INTO "images" VALUES(4,'img3.png','0000000000000000000000000000000000000000000000000000000000000003',8,8,1.79663979600381159781e+09,NULL,NULL);
INSERT INTO "images" VALUES(5,'img4.png','0000000000000000000000000000000000000000000000000000000000000004',8,8,1.79663979600381159781e+09,NULL,NULL);
INSERT INTO "images" VALUES(6,'img5.png','0000000000000000000000000000000000000000000000000000000000000005',8,8,1.79663979600381159781e+09,NULL,NULL);
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT INTO "meta" VALUES('schema_version','2');
INSERT INTO "meta" VALUES('config','{"batch_size": 4, "seed": 0}');
INSERT INTO "meta" VALUES('created_at','1796639795.9902775');
CREATE TABLE queries (
    round_id INTEGER NOT NULL REFERENCES rounds(id),
    image_id INTEGER NOT NULL REFERENCES images(id),
    position INTEGER NOT NULL,
    score REAL,
    guess TEXT REFERENCES classes(name),
    confidence REAL,
    PRIMARY KEY (round_id, image_id)
);
INSERT INTO "queries" VALUES(1,1,0,NULL,NULL,NULL);
INSERT INTO "queries" VALUES(1,2,1,NULL,NULL,NULL);
INSERT INTO "queries" VALUES(1,3,2,NULL,NULL,NULL);
INSERT INTO "queries" VALUES(1,4,3,NULL,NULL,NULL);
CREATE TABLE rounds (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    status TEXT NOT NULL CHECK (status IN ('running', 'done', 'failed', 'interrupted')),
    strategy TEXT NOT NULL,
    model TEXT,
    params TEXT,
    pid INTEGER,
    host TEXT,
    started_at REAL NOT NULL,
    finished_at REAL,
    last_answer_id INTEGER,
    n_labeled INTEGER,
    n_train INTEGER,
    n_holdout INTEGER,
    accuracy REAL,
    checkpoint TEXT,
    checkpoint_sha256 TEXT,
    error TEXT
);
INSERT INTO "rounds" VALUES(1,'done','random_sampling',NULL,'{"seed": 0}',14317,'vm',1.79663979600618791583e+09,1.79663979600932598116e+09,1,1,0,0,NULL,NULL,NULL,NULL);
CREATE UNIQUE INDEX images_path_in_use ON images(path) WHERE retired_at IS NULL;
CREATE INDEX images_sha256 ON images(sha256);
CREATE INDEX answers_image ON answers(image_id);
CREATE INDEX answers_annotator ON answers(annotator, id);
CREATE UNIQUE INDEX answers_undone_once ON answers(undoes) WHERE undoes IS NOT NULL;
DELETE FROM "sqlite_sequence";
INSERT INTO "sqlite_sequence" VALUES('answers',10);
INSERT INTO "sqlite_sequence" VALUES('rounds',1);
COMMIT;
