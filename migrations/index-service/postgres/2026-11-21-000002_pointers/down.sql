DROP TABLE pointer_tags;
DROP TABLE pointers;
