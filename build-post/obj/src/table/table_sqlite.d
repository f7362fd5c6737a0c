build-post/obj/src/table/table_sqlite.o: src/table/table_sqlite.c \
 src/table/table_engine.h src/table/table.h src/table/../addr/addr.h \
 src/table/../conf/conf.h src/util/util.h
src/table/table_engine.h:
src/table/table.h:
src/table/../addr/addr.h:
src/table/../conf/conf.h:
src/util/util.h:
