build-pre/obj/src/table/table_pgsql.o: src/table/table_pgsql.c \
 /usr/include/postgresql/libpq-fe.h \
 /usr/include/postgresql/postgres_ext.h \
 /usr/include/postgresql/pg_config_ext.h src/table/table_engine.h \
 src/table/table.h src/table/../addr/addr.h src/table/../conf/conf.h \
 src/util/util.h
/usr/include/postgresql/libpq-fe.h:
/usr/include/postgresql/postgres_ext.h:
/usr/include/postgresql/pg_config_ext.h:
src/table/table_engine.h:
src/table/table.h:
src/table/../addr/addr.h:
src/table/../conf/conf.h:
src/util/util.h:
