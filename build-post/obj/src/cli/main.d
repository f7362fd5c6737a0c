build-post/obj/src/cli/main.o: src/cli/main.c src/addr/addr.h \
 src/auth/auth.h src/util/util.h src/cli/cli.h src/conf/conf.h \
 src/smtp/smtp.h src/smtp/../addr/addr.h src/smtp/../util/util.h \
 src/deliver/deliver.h src/table/table.h src/table/../addr/addr.h \
 src/table/../conf/conf.h
src/addr/addr.h:
src/auth/auth.h:
src/util/util.h:
src/cli/cli.h:
src/conf/conf.h:
src/smtp/smtp.h:
src/smtp/../addr/addr.h:
src/smtp/../util/util.h:
src/deliver/deliver.h:
src/table/table.h:
src/table/../addr/addr.h:
src/table/../conf/conf.h:
