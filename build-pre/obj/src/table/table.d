build-pre/obj/src/table/table.o: src/table/table.c \
 src/table/table_engine.h src/table/table.h src/table/../addr/addr.h \
 src/table/../conf/conf.h src/util/util.h
src/table/table_engine.h:
src/table/table.h:
src/table/../addr/addr.h:
src/table/../conf/conf.h:
src/util/util.h:
