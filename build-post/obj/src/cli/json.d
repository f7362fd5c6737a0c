build-post/obj/src/cli/json.o: src/cli/json.c src/cli/cli.h \
 src/addr/addr.h src/conf/conf.h src/smtp/smtp.h src/smtp/../addr/addr.h \
 src/smtp/../util/util.h src/util/util.h
src/cli/cli.h:
src/addr/addr.h:
src/conf/conf.h:
src/smtp/smtp.h:
src/smtp/../addr/addr.h:
src/smtp/../util/util.h:
src/util/util.h:
